// A handler with the hooks the connection policy uses, each doing nothing: what any handler with
// these hooks costs the server, apart from the policy's own work (`npm run bench:policy`).
export default {
  handleCONNECT() {},
  handleCLOSE() {},
  handleMAIL() {},
  handleRCPT() {},
};
