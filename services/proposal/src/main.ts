import { runService } from "@safedeploy/runtime";
import { proposalService } from "./service.js";

runService(proposalService);
