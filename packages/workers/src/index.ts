export {
  type SupervisorOptions,
  serveInWorker,
  serveWorkers,
  type WorkerEvent,
  WorkerSupervisor,
  workerCount,
} from "./workers.js";
