import { runService } from "@safedeploy/runtime";
import { createGitActuatorService } from "./service.js";

runService(createGitActuatorService({ env: process.env }));
