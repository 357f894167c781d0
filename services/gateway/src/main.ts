import { runService } from "@safedeploy/runtime";
import { createGatewayService, gatewayOptionsFromEnv } from "./service.js";

runService(createGatewayService(gatewayOptionsFromEnv(process.env)));
