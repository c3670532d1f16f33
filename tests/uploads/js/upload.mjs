// Upload one file with the official tus-js-client (Node), as a recorder would.
// usage: node upload.mjs '{"endpoint", "file", "headers", "metadata", "chunkSize", "cutAt", "withCreation"}'
// With cutAt: the upload is aborted once that many bytes were sent (the HTTP
// request is torn down mid-body), then a new Upload on the same URL resumes
// from the offset the server reports (HEAD). Prints JSON {url, resumedFrom}.
import fs from "node:fs";
import { Upload } from "tus-js-client";

const opts = JSON.parse(process.argv[2]);
const size = fs.statSync(opts.file).size;

function start(uploadUrl, onProgress) {
  return new Promise((resolve, reject) => {
    const upload = new Upload(fs.createReadStream(opts.file), {
      endpoint: opts.endpoint,
      uploadUrl,
      headers: opts.headers,
      metadata: opts.metadata,
      chunkSize: opts.chunkSize ?? size,
      uploadSize: size,
      uploadDataDuringCreation: !!opts.withCreation,
      retryDelays: [0, 200, 500],
      storeFingerprintForResuming: false,
      onError: reject,
      onSuccess: () => resolve({ url: upload.url, aborted: false }),
      onProgress: (sent) => onProgress && onProgress(upload, sent, resolve),
    });
    upload.start();
  });
}

let resumedFrom = null;
let result;
if (opts.cutAt) {
  const first = await start(null, (upload, sent, resolve) => {
    if (sent >= opts.cutAt && upload.url) {
      upload.abort(false).then(() => resolve({ url: upload.url, aborted: true }));
    }
  });
  if (!first.aborted) throw new Error("finished before the cut");
  const res = await fetch(first.url, { method: "HEAD", headers: { ...opts.headers, "Tus-Resumable": "1.0.0" } });
  resumedFrom = Number(res.headers.get("upload-offset"));
  result = await start(first.url, null);
} else {
  result = await start(null, null);
}
console.log(JSON.stringify({ url: result.url, resumedFrom }));
