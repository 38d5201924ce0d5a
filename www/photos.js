// Photos in: files, folders, drops, the clipboard and the webcam, as the person gave them.
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

/** The webcam: start(video) → stream; frame(video) → JPEG Blob of the current picture. */
export async function startWebcam(video) {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error("this browser gives no access to a webcam");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    throw new Error(e.name === "NotAllowedError" ? "the webcam was not allowed: allow it in the browser's address bar" : `no webcam: ${e.message}`);
  }
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function stopWebcam(video) {
  video.srcObject?.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
}

/** The webcam's current picture, as an ImageBitmap for the engine. */
export function webcamFrame(video) {
  return createImageBitmap(video);
}
