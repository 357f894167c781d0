import { runService } from "@safedeploy/runtime";
import { slackFromEnv } from "./routes/slack.js";
import { createGatewayService, gatewayOptionsFromEnv } from "./service.js";

const slack = await slackFromEnv(process.env);
runService(
  createGatewayService({
    ...gatewayOptionsFromEnv(process.env),
    ...(slack === undefined ? {} : { slack }),
  }),
);
