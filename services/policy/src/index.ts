export { policyService } from "./service.js";
export { CanaryRecord, FreezeRecord, PolicyRecord } from "./store.js";
