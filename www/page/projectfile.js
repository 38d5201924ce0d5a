// Project files: what "Save project" writes and "Open project" reads. Pure functions of bytes
// and plain data (tested under node, tests/js), no DOM, no IndexedDB.
//
// Saved: a ZIP (fflate, vendored by build.sh) holding
//   project.json      format, version, the backbone's sha256, settings, classes in order with
//                     their photos, the model's figures
//   photos/<class>/…  each photo as it is kept in this browser
//   embeddings.bin    every photo's embeddings (float32, little-endian), where project.json
//                     says; used only when the backbone's sha256 matches (else made again)
//   model.fewshot     the trained model, when there is one
//   MODEL_CARD.md     what the model is, for people (modelcard.js)
// project.json holds the sha256 of every other file: a damaged file is refused, never opened
// with changed photos, embeddings or weights.
// Opened: such a ZIP; a plain ZIP of one folder per class (a data set someone downloaded); or
// the binary project file of Fewshot 0.1 ("FEWSHOTP").
import { zipSync, unzipSync, strToU8, strFromU8 } from "../vendor/fflate.js";
import { sniffType } from "../seam/image.js";
import { badInput, Kind } from "../seam/protocol.js";
import { sha256Hex } from "../seam/engine.js";

export const FORMAT = "fewshot-project";
export const VERSION = 2;
/** Bounds checked before anything is unpacked: a file cannot make the page allocate more. */
export const LIMITS = { entries: 50_100, bytes: 2 ** 31 };

const EXTENSIONS = { "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/bmp": "bmp", "image/webp": "webp", "image/avif": "avif" };

/** A class name as a folder name: no path separators or characters file systems refuse. */
export function folderName(name, taken) {
  const base = name.replace(/[\u0000-\u001f\\/:*?"<>|]/g, "_").replace(/^[.\s]+|[.\s]+$/g, "").slice(0, 80) || "class";
  let folder = base;
  for (let n = 2; taken.has(folder.toLowerCase()); n++) folder = `${base} (${n})`;
  taken.add(folder.toLowerCase());
  return folder;
}

/**
 * The ZIP of a project. `project`: { classes: [{ name, photos: [{ id, added, bytes: Uint8Array,
 * embeddings: Float32Array | null, viewsKey }] }], settings, model: { bytes, ...figures } | null,
 * backbone: { sha256 }, card: string (MODEL_CARD.md) }. Returns the ZIP's bytes.
 */
export async function writeProject({ classes, settings, model, backbone, card }) {
  const files = {};
  const floats = [];
  let at = 0;
  const taken = new Set();
  const manifestClasses = classes.map((c) => {
    const folder = folderName(c.name, taken);
    return {
      name: c.name,
      photos: c.photos.map((p, i) => {
        const type = sniffType(p.bytes.subarray(0, 16)) ?? "image/jpeg";
        const file = `photos/${folder}/${String(i + 1).padStart(4, "0")}.${EXTENSIONS[type]}`;
        files[file] = [p.bytes, { level: 0 }];
        let embeddings = null;
        if (p.embeddings) {
          embeddings = { at, length: p.embeddings.length, viewsKey: p.viewsKey ?? null };
          floats.push(p.embeddings);
          at += p.embeddings.length;
        }
        return { id: p.id, file, added: p.added ?? i, embeddings };
      }),
    };
  });
  if (at) {
    const all = new Float32Array(at);
    floats.reduce((offset, f) => (all.set(f, offset), offset + f.length), 0);
    files["embeddings.bin"] = [littleEndian(all), { level: 0 }];
  }
  let manifestModel = null;
  if (model?.bytes) {
    const { bytes, ...figures } = model;
    files["model.fewshot"] = [bytes, { level: 0 }];
    manifestModel = { ...figures, file: "model.fewshot" };
  }
  const checksums = {};
  for (const [file, [bytes]] of Object.entries(files)) checksums[file] = await sha256Hex(bytes);
  if (card) files["MODEL_CARD.md"] = strToU8(card);
  const manifest = { format: FORMAT, version: VERSION, saved: new Date().toISOString(), backbone, settings, classes: manifestClasses, model: manifestModel, checksums };
  files["project.json"] = strToU8(JSON.stringify(manifest, null, 1));
  return zipSync(files, { level: 6 });
}

/** Float32 data as little-endian bytes (every machine a browser runs on is little-endian; the
 * check keeps the file format honest anyway). */
function littleEndian(floats) {
  const bytes = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
  if (new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f) return bytes;
  const out = new Uint8Array(bytes.length);
  const view = new DataView(out.buffer);
  floats.forEach((f, i) => view.setFloat32(i * 4, f, true));
  return out;
}

/**
 * Read a project file's bytes (`name` for messages). Resolves to { kind: "project" | "folders"
 * | "binary", settings, classes: [{ name, photos: [{ id?, image: Blob (kept as it is) | null,
 * source: Blob (to be read by the engine) | null, embeddings, viewsKey }] }], model, skipped:
 * files that were not photos, backbone: { sha256 } | null }. Throws bad-input errors that say
 * what is wrong; allocates nothing before the sizes are checked.
 *
 * `check(json, files, model)` is the engine's check of a project's description (Op.CheckProject,
 * src/projectfile.rs): project.json's text, { name: size } of the other files, the model file's
 * bytes. Every kind of file is described as a project.json and checked by it, so that nothing
 * it refuses (a setting out of range, 300 classes, a model that is not one) is ever kept.
 */
export async function readProject(bytes, name = "the file", check) {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5)) return readZip(bytes, name, check);
  if (strFromU8(bytes.subarray(0, 8)) === "FEWSHOTP") return readBinary(bytes, name, check);
  throw badInput(`${name} is not a Fewshot project: open a .zip saved by Fewshot, a .zip with one folder of photos per class, or a .fewshot-project file`);
}

/** The engine's check, its refusal worded as this file's. */
async function checked(check, name, json, files, model) {
  try {
    return await check(json, files, model ?? null);
  } catch (e) {
    if (e.kind === Kind.BadInput) throw badInput(`${name} cannot be opened: ${e.message}`);
    throw e;
  }
}

const SIGNATURES = { local: [0x50, 0x4b, 3, 4, 30, 26], central: [0x50, 0x4b, 1, 2, 46, 28] };

/** Whether any header of a ZIP, local or central, names `wanted`: a project ZIP whose directory
 * is damaged still says it is one (and is refused as damaged, not opened as a data set). */
function namesFile(bytes, wanted) {
  const target = strToU8(wanted);
  for (const [a, b, c, d, start, lengthAt] of Object.values(SIGNATURES)) {
    for (let i = 0; i + start <= bytes.length; i++) {
      if (bytes[i] !== a || bytes[i + 1] !== b || bytes[i + 2] !== c || bytes[i + 3] !== d) continue;
      const length = bytes[i + lengthAt] | (bytes[i + lengthAt + 1] << 8);
      if (length === target.length && target.every((v, k) => bytes[i + start + k] === v)) return true;
    }
  }
  return false;
}

async function readZip(bytes, name, check) {
  let entries = 0;
  let total = 0;
  let files;
  try {
    files = unzipSync(bytes, {
      filter: (file) => {
        if (file.name.endsWith("/") || /(^|\/)(__MACOSX|\.)/.test(file.name)) return false;
        entries++;
        total += file.originalSize;
        if (entries > LIMITS.entries) throw badInput(`${name} holds more than ${LIMITS.entries.toLocaleString("en")} files`);
        if (total > LIMITS.bytes) throw badInput(`${name} unpacks to more than ${LIMITS.bytes / 2 ** 30} GB`);
        return true;
      },
    });
  } catch (e) {
    if (e.kind) throw e;
    throw badInput(`${name} is a damaged ZIP file (${e.message})`);
  }
  if (files["project.json"]) return readProjectZip(files, name, check);
  if (namesFile(bytes, "project.json")) throw badInput(`${name} is a damaged project: its list of files is broken, and its project.json cannot be found in it`);
  return readFolders(files, name, check);
}

async function readProjectZip(files, name, check) {
  const json = strFromU8(files["project.json"]);
  let claimed;
  try {
    claimed = JSON.parse(json);
  } catch {
    throw badInput(`${name} is damaged: its project.json is not readable`);
  }
  const sizes = {};
  for (const [file, data] of Object.entries(files)) if (file !== "project.json") sizes[file] = data.byteLength;
  const modelFile = typeof claimed?.model?.file === "string" ? claimed.model.file : null;
  const manifest = await checked(check, name, json, sizes, modelFile && files[modelFile]);
  // The engine checked the checksums' shape; here, that every file matches its own.
  const checksums = claimed.checksums ?? {};
  for (const [file, data] of Object.entries(files)) {
    if (file === "project.json" || file === "MODEL_CARD.md") continue;
    if (checksums[file] !== (await sha256Hex(data))) throw badInput(`${name} is damaged: ${file} does not match its checksum`);
  }
  const bin = files["embeddings.bin"];
  const floats = bin && bin.byteLength % 4 === 0 ? new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength)) : null;
  const classes = manifest.classes.map((c) => ({
    name: c.name,
    photos: c.photos.map((p) => {
      const data = files[p.file];
      const type = sniffType(data.subarray(0, 16));
      if (!type) throw badInput(`${name} is damaged: ${p.file} is not an image`);
      const e = p.embeddings;
      return {
        id: p.id,
        added: p.added,
        image: new Blob([data], { type }),
        source: null,
        embeddings: e && floats ? floats.slice(e.at, e.at + e.length) : null,
        viewsKey: e && floats ? e.viewsKey : null,
      };
    }),
  }));
  const model = manifest.model && { ...withoutFile(manifest.model), bytes: files[manifest.model.file] };
  return { kind: "project", settings: manifest.settings, classes, model, skipped: [], backbone: manifest.backbone ?? null };
}

const withoutFile = ({ file: _, ...rest }) => rest;

/** A description of classes and photos that are not a project ZIP's, for the engine's check. */
function described({ settings = {}, classes, model = null }) {
  const files = {};
  const manifest = {
    format: FORMAT,
    version: VERSION,
    settings,
    classes: classes.map((c, i) => ({
      name: c.name,
      photos: c.photos.map((p, j) => {
        const file = `${i}/${j}`;
        files[file] = p.size ?? 0;
        return { id: p.id ?? null, file, added: p.added ?? j };
      }),
    })),
    model: model && { ...model, file: "model" },
  };
  if (model) files.model = 0;
  return [JSON.stringify(manifest), files];
}

/** A ZIP of folders of photos: one class per folder (the folder that holds the photo). */
async function readFolders(files, name, check) {
  const byClass = new Map();
  const skipped = [];
  for (const [path, data] of Object.entries(files)) {
    const parts = path.split("/");
    const type = sniffType(data.subarray(0, 16));
    if (!type || parts.length < 2) {
      skipped.push(path);
      continue;
    }
    const folder = parts[parts.length - 2];
    if (!byClass.has(folder)) byClass.set(folder, []);
    byClass.get(folder).push({ id: null, image: null, source: new File([data], parts[parts.length - 1], { type }), embeddings: null, viewsKey: null });
  }
  if (byClass.size === 0) {
    throw badInput(`${name} holds no photos in folders: a project ZIP has project.json, a data set one folder of photos per class`);
  }
  const classes = [...byClass].sort(([a], [b]) => a.localeCompare(b)).map(([folder, photos]) => ({ name: folder, photos }));
  const manifest = await checked(check, name, ...described({ classes }));
  return { kind: "folders", settings: manifest.settings, classes, model: null, skipped, backbone: null };
}

/** The binary project file of Fewshot 0.1: "FEWSHOTP" + version byte + u32 length of a JSON
 * manifest + the manifest + the parts it points into as [offset, length]. */
async function readBinary(bytes, name, check) {
  if (bytes.byteLength < 13) throw badInput(`${name} is truncated`);
  if (bytes[8] > 1) throw badInput(`${name} was saved by a newer Fewshot (project format ${bytes[8]}); update Fewshot to open it`);
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(9, true);
  if (13 + length > bytes.byteLength) throw badInput(`${name} is truncated (the project description is cut off)`);
  let manifest;
  try {
    manifest = JSON.parse(strFromU8(bytes.subarray(13, 13 + length)));
  } catch {
    throw badInput(`${name} is damaged (its project description is not readable)`);
  }
  if (manifest?.format !== FORMAT || !Array.isArray(manifest.classes)) throw badInput(`${name} is not a Fewshot project`);
  const body = bytes.subarray(13 + length);
  const slice = (range) => {
    const [at, len] = Array.isArray(range) ? range : [];
    if (!(Number.isInteger(at) && Number.isInteger(len) && at >= 0 && len >= 0 && at + len <= body.byteLength)) {
      throw badInput(`${name} is truncated (photos are missing from its end)`);
    }
    return body.slice(at, at + len);
  };
  const floatsOf = (ranges) => {
    // Older files kept one part per view.
    const parts = (Array.isArray(ranges[0]) ? ranges : [ranges]).map((r) => slice(r));
    if (parts.some((p) => p.byteLength % 4)) return null;
    const out = new Float32Array(parts.reduce((n, p) => n + p.byteLength / 4, 0));
    parts.reduce((offset, p) => (out.set(new Float32Array(p.buffer, p.byteOffset, p.byteLength / 4), offset), offset + p.byteLength / 4), 0);
    return out;
  };
  const classes = manifest.classes.map((c) => ({
    name: String(c?.name ?? "Class"),
    photos: (Array.isArray(c?.photos) ? c.photos : []).map((p, i) => {
      const data = slice(p?.image);
      const type = sniffType(data.subarray(0, 16));
      if (!type) throw badInput(`${name} is damaged: a photo of ${String(c.name)} is not an image`);
      const embeddings = p.embeddings ? floatsOf(p.embeddings) : null;
      return {
        id: typeof p.id === "string" && p.id.length > 0 && p.id.length <= 64 ? p.id : null,
        added: i,
        image: new Blob([data], { type }),
        source: null,
        embeddings,
        viewsKey: embeddings && typeof p.viewsKey === "string" ? p.viewsKey : null,
      };
    }),
  }));
  const modelBytes = manifest.model ? slice(manifest.model.bytes) : null;
  const { bytes: _, ...figures } = manifest.model ?? {};
  const description = described({ settings: manifest.settings ?? {}, classes, model: manifest.model ? figures : null });
  const checkedManifest = await checked(check, name, ...description, modelBytes);
  checkedManifest.classes.forEach((c, i) => c.photos.forEach((p, j) => (classes[i].photos[j].id = p.id)));
  const model = checkedManifest.model && { ...withoutFile(checkedManifest.model), bytes: modelBytes };
  // The binary format predates the backbone's sha256 in files: it had one backbone.
  return { kind: "binary", settings: checkedManifest.settings, classes, model, skipped: [], backbone: null };
}
