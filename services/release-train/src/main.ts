import { runService } from "@safedeploy/runtime";
import { releaseTrainService } from "./service.js";

runService(releaseTrainService);
