// Photos in: files, folders, drops and the clipboard, as the person gave them (the webcam is
// webcam.js).
// The engine's worker reads each (image.js: its type from its bytes, decoded once).

const IMAGE_TYPES = /^image\//;

/** Files from a drop: plain files, and folders read recursively. Returns
 * [{ file, folder }] where folder is the top-level folder's subfolder name, if any. */
export async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.length === 0) return [...dataTransfer.files].map((file) => ({ file, folder: null }));
  const out = [];
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (entry.isFile) out.push({ file: await fileOf(entry), folder: null });
    else await readFolder(entry, null, out, entry);
  }
  return out;
}

async function readFolder(dir, folder, out, top) {
  const entries = (await entriesOf(dir)).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    if (entry.isFile) out.push({ file: await fileOf(entry), folder: folder ?? (dir === top ? null : dir.name) });
    else await readFolder(entry, folder ?? (dir === top ? entry.name : folder), out, top);
  }
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

async function entriesOf(dir) {
  const reader = dir.createReader();
  const all = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

/** Files from a folder picker (<input webkitdirectory>): [{ file, folder }], sorted by path
 * so that classes come in alphabetical order. */
export function pickedFolderFiles(files) {
  const byPath = (a, b) => (a.webkitRelativePath || a.name).localeCompare(b.webkitRelativePath || b.name);
  return [...files].sort(byPath).map((file) => {
    const parts = (file.webkitRelativePath || file.name).split("/");
    return { file, folder: parts.length > 2 ? parts[parts.length - 2] : null };
  });
}

/** Image files on the clipboard of a paste event. */
export function pastedFiles(event) {
  return [...(event.clipboardData?.files || [])].filter((f) => IMAGE_TYPES.test(f.type));
}
