// A photo's way in, decoded once (in the worker): its type from its bytes (never from its name
// or declared type), then one bitmap that gives both the stored JPEG and the RGBA pixels the
// engine embeds. Pure parts (sniffType, fitSize) are tested under node (tests/js).
import { badInput } from "./protocol.js";

/** Longest side a photo is kept at: the backbone sees 224 px (crop or pad), thumbnails less;
 * small enough for thousands in IndexedDB. */
export const STORED_SIDE = 448;

const SIGNATURES = [
  ["image/jpeg", [0xff, 0xd8, 0xff]],
  ["image/png", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ["image/gif", [0x47, 0x49, 0x46, 0x38]],
  ["image/bmp", [0x42, 0x4d]],
];

/** The image type of a file's first bytes, or null when it is not an image we accept
 * (SVG, HTML and anything else that could hold a script are never images here). */
export function sniffType(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  for (const [type, signature] of SIGNATURES) if (signature.every((v, i) => b[i] === v)) return type;
  const ascii = (from, to) => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  if (b.length >= 12 && ascii(4, 8) === "ftyp" && /^(avif|avis)$/.test(ascii(8, 12))) return "image/avif";
  return null;
}

/** The size a width x height photo is stored at: at most `side` on its longest side, never
 * under `minSide` (the engine's minimum, Backbone.minImageSide()) on its shortest. */
export function fitSize(width, height, minSide, side = STORED_SIDE) {
  if (!(width >= minSide && height >= minSide)) throw badInput(`the image is only ${width}x${height} pixels; use a photo at least ${minSide}x${minSide}`);
  const scale = Math.min(1, side / Math.max(width, height));
  return { width: Math.max(minSide, Math.round(width * scale)), height: Math.max(minSide, Math.round(height * scale)) };
}

/** A bitmap of a Blob whose bytes are an image; a readable bad-input error otherwise. */
async function bitmapOf(blob) {
  if (!blob || blob.size === 0) throw badInput("the file is empty (0 bytes)");
  const type = sniffType(new Uint8Array(await blob.slice(0, 16).arrayBuffer()));
  if (!type) throw badInput("not an image: only JPEG, PNG, WebP, GIF, BMP and AVIF files are accepted");
  try {
    return await createImageBitmap(new Blob([blob], { type }), { imageOrientation: "from-image" });
  } catch {
    throw badInput("not a readable image (damaged, or a format this browser cannot decode)");
  }
}

/** Decode once: { pixels (RGBA), width, height, stored: () => Promise<Blob> } from a Blob
 * (a file, a stored JPEG), an ImageBitmap (a webcam frame), or ImageData; `minSide` is the
 * engine's smallest side. */
export async function decode(image, minSide) {
  if (typeof ImageData !== "undefined" && image instanceof ImageData) {
    fitSize(image.width, image.height, minSide, Infinity);
    return { pixels: image.data, width: image.width, height: image.height, stored: null };
  }
  const bitmap = image instanceof Blob ? await bitmapOf(image) : image;
  try {
    const { width, height } = fitSize(bitmap.width, bitmap.height, minSide);
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.fillStyle = "#fff"; // transparency on white, as the engine does
    context.fillRect(0, 0, width, height);
    context.imageSmoothingQuality = "high";
    context.drawImage(bitmap, 0, 0, width, height);
    const pixels = context.getImageData(0, 0, width, height).data;
    return { pixels, width, height, stored: () => canvas.convertToBlob({ type: "image/jpeg", quality: 0.92 }) };
  } finally {
    bitmap.close?.();
  }
}
