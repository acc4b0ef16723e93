// Node.js side of the BullMQ interop test (run with the bullmq package installed beside it).
//   node bullmq_interop.mjs work <port> <queue> <count>  -> processes <count> jobs, prints them as JSON
//   node bullmq_interop.mjs add <port> <queue>           -> adds jobs, prints their ids as JSON
//   node bullmq_interop.mjs read <port> <queue> <id>...  -> prints each job's state and return value
import { Queue, Worker, Job } from "bullmq";

const [mode, port, name, ...rest] = process.argv.slice(2);
const connection = { host: "127.0.0.1", port: Number(port) };

if (mode === "work") {
  const count = Number(rest[0]);
  const seen = [];
  await new Promise((resolve) => {
    const worker = new Worker(name, async (job) => {
      seen.push({ id: job.id, name: job.name, data: job.data, attemptsMade: job.attemptsMade, priority: job.opts.priority ?? 0 });
      if (job.data && job.data.fail && job.attemptsMade === 0) throw new Error("node says no");
      return { doubled: (job.data.n ?? 0) * 2, by: "node" };
    }, { connection, concurrency: 1 });
    let completed = 0;
    worker.on("completed", async () => {
      completed += 1;
      if (completed === count) { await worker.close(); resolve(); }
    });
  });
  console.log(JSON.stringify(seen));
} else if (mode === "add") {
  const queue = new Queue(name, { connection });
  const a = await queue.add("from-node", { n: 21 }, { attempts: 2 });
  const b = await queue.add("from-node", { n: 5 }, { priority: 3, jobId: "node-custom" });
  const c = await queue.add("from-node", { n: 1 }, { delay: 200 });
  console.log(JSON.stringify([a.id, b.id, c.id]));
  await queue.close();
} else if (mode === "read") {
  const queue = new Queue(name, { connection });
  const out = [];
  for (const id of rest) {
    const job = await Job.fromId(queue, id);
    out.push({ id, state: await job.getState(), returnvalue: job.returnvalue, attemptsMade: job.attemptsMade });
  }
  console.log(JSON.stringify(out));
  await queue.close();
}
process.exit(0);
