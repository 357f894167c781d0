import { runService } from "@safedeploy/runtime";
import { incidentService } from "./service.js";

runService(incidentService);
