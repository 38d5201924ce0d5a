// Keeping projects in this browser: IndexedDB, so that they survive a reload (project files
// are projectfile.js's). The page keeps the classes, photos, settings and the model, and the
// list of projects; the engine's worker keeps the embeddings (worker/embeddings.js). Opening
// a project's database, its stores, and which project is in use are seam/database.js's.
//
// A project opened from a file is written whole into a new database before it is listed, so
// that opening a file can never cost the project that is open (nor, failing, leave half a
// project). Opening reads the photos' ids by the indexes and their images after (images()):
// a project of 10,000 photos shows before 10,000 images are read.
import { FIRST_PROJECT, database, db, currentProject, done, indexed, storageError, deleteDatabase } from "../seam/database.js";
import { FewshotError } from "../seam/protocol.js";

export { useProject, currentProject, readEmbeddings } from "../seam/database.js";

const LIST_DB = "fewshot-projects";

/** A photo as stored: its image, class and when it was added. A photo given but not read
 * yet is kept too ("pending", its bytes as given, typeless, with its file name), so that a
 * reload in the middle of adding a folder loses nothing; a webcam frame (an ImageBitmap,
 * read at once) is not: null. */
function photoRecord(photo, classId) {
  if (photo.image) return indexed({ id: photo.id, classId, added: photo.added, image: photo.image });
  if (!(photo.source instanceof Blob)) return null;
  return indexed({ id: photo.id, classId, added: photo.added, pending: true, name: photo.source.name ?? "", image: new Blob([photo.source]) });
}

/** Whether this browser's storage has refused a Blob: WebKit's does in a private window (and
 * in an automation session), "Error preparing Blob/File data to be stored in object store",
 * while it keeps an ArrayBuffer. Photos are then kept as their bytes and type. */
let blobsRefused = false;
/** Told once, when the storage first refuses a Blob: the page says what that means. */
let tellBlobsRefused = () => {};
export const whenBlobsRefused = (tell) => (tellBlobsRefused = tell);

async function asBytes(record) {
  if (!(record.image instanceof Blob)) return record;
  const { image, ...rest } = record;
  return { ...rest, bytes: await image.arrayBuffer(), type: image.type };
}

/** A stored photo record's image, a Blob whichever way it was kept. */
const imageOf = (record) => record.image ?? (record.bytes ? new Blob([record.bytes], { type: record.type ?? "" }) : null);

/** Write photo `records` by `write(records)`: as they are, or, where the storage refuses a
 * Blob, with their images as bytes (tried once when a write fails, then always). */
async function withImages(records, write) {
  if (!blobsRefused) {
    try {
      return await write(records);
    } catch (e) {
      const failed = e instanceof FewshotError ? e : storageError(e);
      if (!records.some((r) => r.image instanceof Blob)) throw failed;
      const result = await write(await Promise.all(records.map(asBytes))).catch(() => Promise.reject(failed));
      blobsRefused = true;
      tellBlobsRefused();
      return result;
    }
  }
  return write(await Promise.all(records.map(asBytes)));
}

/** Store a photo (not its embeddings: the engine's worker stores those, worker/embeddings.js). */
export const putPhoto = (photo, classId) => putPhotos([[photo, classId]]);

/** Store photos ([[photo, classId]]) in one transaction: all or none. */
export async function putPhotos(pairs) {
  const records = pairs.map(([photo, classId]) => photoRecord(photo, classId)).filter(Boolean);
  if (records.length === 0) return;
  return withImages(records, async (records) => {
    const t = (await db()).transaction("photos", "readwrite");
    for (const record of records) t.objectStore("photos").put(record);
    return done(t);
  });
}

/** Remove photos and their embeddings, in one transaction. */
export async function deletePhotos(ids) {
  const t = (await db()).transaction(["photos", "embeddings"], "readwrite");
  ids.forEach((id) => {
    t.objectStore("photos").delete(id);
    t.objectStore("embeddings").delete(id);
  });
  return done(t);
}

/** The meta record: classes (id, name) in order, settings, the model, and what could not be
 * used and was set aside ([{ what, value, why, when }]: kept, never thrown away). */
const metaRecord = (state) => ({
  classes: state.classes.map((c) => ({ id: c.id, name: c.name })),
  settings: state.settings,
  model: state.model,
  setAside: state.setAside ?? [],
});

/** Store everything but the photos: class names and order, settings, the model. */
export async function putMeta(state) {
  const t = (await db()).transaction("meta", "readwrite");
  t.objectStore("meta").put(metaRecord(state), "project");
  return done(t);
}

/** Replace the stored project with another ({ classes with photos (and their embeddings, from
 * a project file), settings, model }) in one transaction: when it fails, the old one is still
 * there, whole. */
export async function replace(project, name = currentProject()) {
  const photos = project.classes.flatMap((c) => c.photos.map((p) => [p, photoRecord(p, c.id)])).filter(([, record]) => record);
  const embeddings = photos.filter(([p]) => p.embeddings).map(([p]) => ({ id: p.id, viewsKey: p.viewsKey ?? null, data: p.embeddings.buffer.slice(0) }));
  return withImages(photos.map(([, record]) => record), async (records) => {
    const t = (await database(name)).transaction(["meta", "photos", "embeddings"], "readwrite");
    for (const name of ["meta", "photos", "embeddings"]) t.objectStore(name).clear();
    t.objectStore("meta").put(metaRecord(project), "project");
    for (const record of records) t.objectStore("photos").put(record);
    for (const record of embeddings) t.objectStore("embeddings").put(record);
    return done(t);
  });
}

/** The saved project: { classes, settings, model, setAside } with photos in the order added,
 * or null. A photo kept is { id } (its image and time: images()); one given but not read yet
 * comes whole, { id, added, pending: true, name, image }. Read by the indexes, not the records.
 * A meta record that is not what this page writes (damaged, or another version's) never stops
 * the page: what cannot be used is set aside (in `setAside`, with why), and the classes are
 * made again from the photos themselves, so that no photo is lost. */
export async function load() {
  const database = await db();
  const t = database.transaction(["meta", "photos"]);
  const photos = t.objectStore("photos");
  const ids = new Map();
  let meta = null;
  let pending = [];
  let classesOk = true;
  const metaRequest = t.objectStore("meta").get("project");
  metaRequest.onsuccess = () => {
    meta = metaRequest.result;
    classesOk = Array.isArray(meta?.classes) && meta.classes.every((c) => typeof c?.id === "string" && typeof c?.name === "string");
    if (classesOk) {
      for (const c of meta?.classes ?? []) {
        const request = photos.index("byClass").getAllKeys(IDBKeyRange.bound([c.id, -Infinity], [c.id, Infinity]));
        request.onsuccess = () => ids.set(c.id, request.result);
      }
    } else {
      // Every photo by its class, in the order added: the classes are found again from them.
      photos.index("byClass").openKeyCursor().onsuccess = ({ target }) => {
        const cursor = target.result;
        if (!cursor) return;
        const classId = String(cursor.key[0]);
        if (!ids.has(classId)) ids.set(classId, []);
        ids.get(classId).push(cursor.primaryKey);
        cursor.continue();
      };
    }
    const pendingRequest = photos.index("pending").getAll();
    pendingRequest.onsuccess = () => (pending = pendingRequest.result);
  };
  await done(t);
  const given = new Map(pending.map((p) => [p.id, { id: p.id, added: p.added, image: imageOf(p), pending: true, name: p.name }]));
  if (meta === undefined || meta === null) return ids.size ? recovered(ids, given, [], null) : null;
  const setAside = Array.isArray(meta.setAside) ? [...meta.setAside] : [];
  const aside = (what, value, why) => setAside.push({ what, value, why, when: Date.now() });
  let settings = meta.settings ?? {};
  if (typeof settings !== "object" || Array.isArray(settings)) {
    aside("settings", settings, "not a set of settings");
    settings = {};
  }
  let model = meta.model ?? null;
  if (model !== null && !(typeof model === "object" && model.bytes instanceof Uint8Array)) {
    aside("model", model, "not a model");
    model = null;
  }
  if (!classesOk) {
    aside("classes", meta.classes, "not a list of classes");
    return recovered(ids, given, setAside, settings);
  }
  return { settings, model, setAside, classes: meta.classes.map((c) => ({ id: c.id, name: c.name, photos: (ids.get(c.id) ?? []).map((id) => given.get(id) ?? { id }) })) };
}

/** Classes made again from the photos' own records, when the list of classes is lost. */
function recovered(ids, given, setAside, settings) {
  const classes = [...ids].map(([id, photos], i) => ({ id, name: `Recovered ${i + 1}`, photos: photos.map((p) => given.get(p) ?? { id: p }) }));
  return { settings: settings ?? {}, model: null, setAside, classes, recovered: true };
}

/** Kept photos' images and times added (not those given but not read yet: load() has them):
 * Map id → { image, added }, of the photos `ids` or (none given) of every photo. */
export async function images(ids = null) {
  const t = (await db()).transaction("photos");
  const photos = t.objectStore("photos");
  const requests = ids ? ids.map((id) => photos.get(id)) : [photos.getAll()];
  await done(t);
  const records = ids ? requests.map((r) => r.result).filter(Boolean) : requests[0].result;
  return new Map(records.filter((p) => !p.pending).map((p) => [p.id, { image: imageOf(p), added: p.added }]));
}

/** A photo moves to another class: only its record's class changes. */
export async function movePhoto(id, classId) {
  const t = (await db()).transaction("photos", "readwrite");
  const photos = t.objectStore("photos");
  const request = photos.get(id);
  request.onsuccess = () => request.result && photos.put({ ...request.result, classId });
  return done(t);
}

// ---------- the list of projects ----------

function openList() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(LIST_DB, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("projects", { keyPath: "db" });
      request.result.createObjectStore("chosen");
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(storageError(request.error));
  });
}
let listPromise = null;
const list = () => (listPromise ??= openList().catch((e) => ((listPromise = null), Promise.reject(e))));

/** Every project kept in this browser, oldest first: [{ db, name, created }]. The first one
 * ("fewshot", where the page kept its one project before there was a list) is always there. */
export async function projects() {
  const first = { db: FIRST_PROJECT, name: "My project", created: 0 };
  const t = (await list()).transaction("projects", "readwrite");
  const request = t.objectStore("projects").getAll();
  request.onsuccess = () => {
    if (!request.result.some((p) => p.db === FIRST_PROJECT)) t.objectStore("projects").put(first);
  };
  await done(t);
  const all = request.result.some((p) => p.db === FIRST_PROJECT) ? request.result : [first, ...request.result];
  return all.sort((a, b) => a.created - b.created);
}

/** Of the projects `known` (projects()), the one this browser opened last (the page opens it
 * at start). */
export async function chosenProject(known) {
  const t = (await list()).transaction("chosen");
  const request = t.objectStore("chosen").get("project");
  await done(t);
  return known.find((p) => p.db === request.result) ?? known[0];
}

export async function chooseProject(db) {
  const t = (await list()).transaction("chosen", "readwrite");
  t.objectStore("chosen").put(db, "project");
  return done(t);
}

export async function renameProject(db, name) {
  const t = (await list()).transaction("projects", "readwrite");
  const store = t.objectStore("projects");
  const request = store.get(db);
  request.onsuccess = () => request.result && store.put({ ...request.result, name });
  return done(t);
}

/** A new project's database, written by `write(name)` before it is listed: when any of it
 * fails, nothing is left of it and the list is as it was. Returns its record. */
async function listedWhenWhole(name, write) {
  const record = { db: `fewshot-${crypto.randomUUID()}`, name, created: Date.now() };
  try {
    await write(record.db);
    const t = (await list()).transaction("projects", "readwrite");
    t.objectStore("projects").put(record);
    await done(t);
  } catch (e) {
    await deleteDatabase(record.db).catch(() => {});
    throw e;
  }
  return record;
}

/** A new project (`project`: { classes with photos, settings, model }), written whole. */
export const addProject = (name, project) => listedWhenWhole(name, (db) => replace(project, db));

/** A copy of a project, every record of it (photos, embeddings, model), listed under `name`. */
export async function duplicateProject(db, name) {
  const t = (await database(db)).transaction(["meta", "photos", "embeddings"]);
  const meta = t.objectStore("meta").get("project");
  const photos = t.objectStore("photos").getAll();
  const embeddings = t.objectStore("embeddings").getAll();
  await done(t);
  return listedWhenWhole(name, async (copyDb) => {
    const copy = (await database(copyDb)).transaction(["meta", "photos", "embeddings"], "readwrite");
    if (meta.result) copy.objectStore("meta").put(meta.result, "project");
    photos.result.forEach((p) => copy.objectStore("photos").put(p));
    embeddings.result.forEach((e) => copy.objectStore("embeddings").put(e));
    await done(copy);
  });
}

/** Delete a project: its database, and its line in the list. */
export async function deleteProject(db) {
  await deleteDatabase(db);
  const t = (await list()).transaction("projects", "readwrite");
  t.objectStore("projects").delete(db);
  return done(t);
}
