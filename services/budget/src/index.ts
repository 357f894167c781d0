export { onSnapshot } from "./handlers/snapshot.js";
export type { BudgetDeps } from "./handlers/snapshot.js";
export { budgetService } from "./service.js";
