import { runService } from "@safedeploy/runtime";
import { policyService } from "./service.js";

runService(policyService);
