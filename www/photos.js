// Photos in: files, folders, drops, the clipboard and the webcam become small stored images.
// Each photo is kept as a JPEG of at most STORED_SIDE pixels: enough for the backbone's 224 px
// (crop or pad) and for thumbnails, and small enough for thousands in IndexedDB.

const STORED_SIDE = 448;
const IMAGE_TYPES = /^image\//;

/** A stored JPEG (white behind transparency) from any image Blob; throws a readable Error. */
export async function storedImage(blob) {
  if (blob.size === 0) throw new Error("the file is empty (0 bytes)");
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch {
    // The type only words the message: files are tried whatever their name says.
    if (blob.type && !IMAGE_TYPES.test(blob.type) && blob.type !== "application/octet-stream") {
      throw new Error(`not an image (${blob.type})`);
    }
    throw new Error("not a readable image (damaged, or a format this browser cannot decode)");
  }
  try {
    return await toJpeg(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** Draw a source (bitmap, video) scaled to fit STORED_SIDE on white and encode it as JPEG. */
export async function toJpeg(source, width, height) {
  if (width < 16 || height < 16) throw new Error(`the image is only ${width}x${height} pixels; use a photo at least 16x16`);
  const scale = Math.min(1, STORED_SIDE / Math.max(width, height));
  const w = Math.max(16, Math.round(width * scale));
  const h = Math.max(16, Math.round(height * scale));
  const canvas = new OffscreenCanvas(w, h);
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, w, h);
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, w, h);
  return canvas.convertToBlob({ type: "image/jpeg", quality: 0.92 });
}

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

/** The webcam's current picture, square-cropped, as a stored JPEG. */
export function webcamFrame(video) {
  return toJpeg(video, video.videoWidth, video.videoHeight);
}
