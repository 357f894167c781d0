import { runService } from "@safedeploy/runtime";
import { auditService } from "./service.js";

runService(auditService());
