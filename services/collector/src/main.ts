import { runService } from "@safedeploy/runtime";
import { collectorService } from "./service.js";

runService(collectorService);
