import { runService } from "@safedeploy/runtime";
import { createNotifierService, notifierOptionsFromEnv } from "./service.js";

runService(createNotifierService(notifierOptionsFromEnv(process.env)));
