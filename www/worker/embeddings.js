// The engine's worker keeps a project's embeddings itself, in the project's database
// (seam/database.js), beside the photos the page keeps (page/store.js): they never need to
// cross to the page. The worker reads them back with readEmbeddings (seam/database.js), as the
// page does to save a project file.
import { db, done } from "../seam/database.js";

/** Store a photo's embeddings (a Float32Array of every view) under the engine's viewsKey. */
export async function putEmbeddings(id, viewsKey, embeddings) {
  const t = (await db()).transaction("embeddings", "readwrite");
  t.objectStore("embeddings").put({ id, viewsKey, data: embeddings.buffer.slice(embeddings.byteOffset, embeddings.byteOffset + embeddings.byteLength) });
  return done(t);
}

/** Forget embeddings (of photos no longer in the project). */
export async function deleteEmbeddings(ids) {
  if (ids.length === 0) return;
  const t = (await db()).transaction("embeddings", "readwrite");
  ids.forEach((id) => t.objectStore("embeddings").delete(id));
  return done(t);
}
