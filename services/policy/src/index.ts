export { policyService } from "./service.js";
export { FreezeRecord, PolicyRecord } from "./store.js";
