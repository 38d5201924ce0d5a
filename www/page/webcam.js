// The webcam: start(video) shows it in a <video>, frame(video) is its current picture as an
// ImageBitmap for the engine, stopAll() turns every one off.

/** Start the webcam in `video`; a readable Error when there is none or it is not allowed. */
export async function start(video) {
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

/** Stop every webcam the page started. */
export function stopAll() {
  for (const video of document.querySelectorAll("video")) {
    video.srcObject?.getTracks?.().forEach((t) => t.stop());
    video.srcObject = null;
  }
}

/** The webcam's current picture. */
export function frame(video) {
  return createImageBitmap(video);
}
