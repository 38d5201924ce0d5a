// A project's database, as both threads open it: the page (page/store.js: the photos, the meta
// record, the list of projects) and the engine's worker (worker/embeddings.js: the embeddings,
// which never need to cross to the page) keep a project in one IndexedDB database, so that a
// project of 10,000 photos opens without moving 100 MB of embeddings through the page. Here:
// opening one (its stores, and the records of older versions brought up to date), which
// project this thread uses, the channel that tells other tabs of its writes, and a failed
// write in words.
//
// Each project is a database of its own ("fewshot" for the first, as before there was a list;
// "fewshot-<id>" for the others), listed with its name in the database "fewshot-projects"
// (page/store.js).
//
// A project's stores: "meta" (one record: classes in order, settings, the model; and what was
// set aside because it could not be used), "photos" (id, class,
// when added, the JPEG; indexed by class and time added, and by "pending"), "embeddings" (id,
// the engine's viewsKey, every view's floats).
import { FewshotError, Kind } from "./protocol.js";

export const FIRST_PROJECT = "fewshot";
const DB_VERSION = 3;

function open(name) {
  const promise = new Promise((resolve, reject) => {
    const request = indexedDB.open(name, DB_VERSION);
    request.onupgradeneeded = (event) => {
      const db = request.result;
      const { oldVersion } = event;
      if (oldVersion < 1) {
        db.createObjectStore("photos", { keyPath: "id" });
        db.createObjectStore("meta");
      }
      if (oldVersion < 2) db.createObjectStore("embeddings", { keyPath: "id" });
      const photos = request.transaction.objectStore("photos");
      if (oldVersion < 3) {
        photos.createIndex("byClass", ["classId", "added"]);
        photos.createIndex("pending", "pending");
      }
      if (oldVersion >= 1 && oldVersion < 3) {
        // Records of older versions: version 1 kept embeddings inside each photo record (moved
        // out); before 3 a photo not read yet was `pending: true`, which no index holds.
        const embeddings = request.transaction.objectStore("embeddings");
        photos.openCursor().onsuccess = ({ target }) => {
          const cursor = target.result;
          if (!cursor) return;
          const { embeddings: stored, variantsKey, viewsKey, ...photo } = cursor.value;
          const data = embeddingsOf(stored);
          if (data) embeddings.put({ id: photo.id, viewsKey: viewsKey ?? variantsKey ?? null, data: data.buffer });
          cursor.update(indexed(photo));
          cursor.continue();
        };
      }
    };
    request.onsuccess = () => {
      const db = request.result;
      // Closed under us (the disk failed, the browser cleared the site's data, the project was
      // deleted in another tab): open it again on the next use instead of failing every write.
      const forget = () => {
        if (databases.get(name) === opened) databases.delete(name);
      };
      db.onclose = forget;
      db.onversionchange = () => {
        db.close();
        forget();
      };
      resolve(db);
    };
    request.onerror = () => reject(storageError(request.error));
    request.onblocked = () => reject(new Error("another tab holds an older version of this project open: close it and reload"));
  });
  const opened = promise;
  return promise;
}

/** Open databases by name: the project in use, and one being written from a file. */
const databases = new Map();
export const database = (name) => {
  if (!databases.has(name)) databases.set(name, open(name));
  return databases.get(name);
};

/** The project this page (or worker) keeps its photos in: its database's name. */
let current = FIRST_PROJECT;
export const db = () => database(current);

/** Use another project's database from now on (the page once at start; the worker when the
 * page tells it, Op.Restore). */
export function useProject(name) {
  if (name === current) return;
  current = name;
  channel?.close();
  channel = typeof BroadcastChannel !== "undefined" ? new BroadcastChannel(channelName()) : null;
}
export const currentProject = () => current;

// Other tabs on the same project hear of every write (page/tabs.js), so that a tab that follows
// shows what is stored.
export const channelName = () => `fewshot-project:${current}`;
let channel = typeof BroadcastChannel !== "undefined" ? new BroadcastChannel(channelName()) : null;

/** A failed write, in words: a full disk says so, and that what was kept is safe. */
export function storageError(error) {
  // Chromium says QuotaExceededError when the site's quota is used up, and an UnknownError
  // ("Failed to write blobs") when the disk fills first.
  if (error?.name === "QuotaExceededError" || /write|disk|space/i.test(error?.message ?? "")) {
    return new FewshotError(Kind.Storage, "the browser's storage for this page is full, so this was not kept (everything kept before is safe): free disk space or remove photos, then try again");
  }
  return new FewshotError(Kind.Storage, `the browser's storage failed (${error?.message || "the write was aborted"})`);
}

export function done(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => {
      if (transaction.mode === "readwrite" && transaction.db.name === current) channel?.postMessage("changed");
      resolve();
    };
    // The failed request's own error: WebKit has not set the transaction's yet when its error
    // event comes.
    transaction.onerror = (event) => reject(storageError(event.target?.error ?? transaction.error));
    transaction.onabort = () => reject(storageError(transaction.error));
  });
}

/** A photo record as the indexes need it: a record whose key is not a valid IndexedDB key is
 * left out of an index, and opening reads photos by index, so `added` is always a number and
 * `pending`, when there, is 1. */
export function indexed({ pending, ...record }) {
  return { ...record, added: Number.isFinite(record.added) ? record.added : 0, ...(pending ? { pending: 1 } : {}) };
}

/** Embeddings as stored: one buffer (older versions kept one per view). */
function embeddingsOf(stored) {
  if (!stored) return null;
  if (!Array.isArray(stored)) return new Float32Array(stored);
  const parts = stored.map((b) => new Float32Array(b));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** Every stored embedding: [{ id, viewsKey, embeddings: Float32Array }]. */
export async function readEmbeddings() {
  const t = (await db()).transaction("embeddings");
  const request = t.objectStore("embeddings").getAll();
  await done(t);
  return request.result.map(({ id, viewsKey, data }) => ({ id, viewsKey, embeddings: new Float32Array(data) }));
}

/** Delete a project's database (closed first, if this thread has it open). */
export async function deleteDatabase(name) {
  const open = databases.get(name);
  databases.delete(name);
  if (open) (await open.catch(() => null))?.close();
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(storageError(request.error));
  });
}
