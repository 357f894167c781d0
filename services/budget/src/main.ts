import { runService } from "@safedeploy/runtime";
import { budgetService } from "./service.js";

runService(budgetService);
