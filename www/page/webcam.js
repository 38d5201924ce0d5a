// The webcam: start(video) shows it in a <video>, frame(video) is its current picture as an
// ImageBitmap for the engine, stopAll() turns every one off.

/** Start a camera in `video`: the one `camera` names (a deviceId), else the one facing what
 * is in front of the person (a phone's rear camera; a laptop has only the one facing them).
 * Resolves to { camera: its deviceId, cameras: every camera's, in the browser's order }; a
 * readable Error when there is none or it is not allowed. */
export async function start(video, camera = null) {
  if (!navigator.mediaDevices?.getUserMedia) throw new Error("this browser gives no access to a webcam");
  let stream;
  try {
    const which = camera ? { deviceId: { exact: camera } } : { facingMode: { ideal: "environment" } };
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, ...which }, audio: false });
  } catch (e) {
    throw new Error(e.name === "NotAllowedError" ? "the webcam was not allowed: allow it in the browser's address bar" : `no webcam: ${e.message}`);
  }
  video.srcObject = stream;
  await video.play();
  // The cameras' ids are given only once one is allowed.
  const cameras = (await navigator.mediaDevices.enumerateDevices().catch(() => [])).filter((d) => d.kind === "videoinput").map((d) => d.deviceId);
  return { camera: stream.getVideoTracks()[0]?.getSettings?.().deviceId ?? camera, cameras };
}

/** The camera after `camera` among `cameras`, round (the first when it is not among them). */
export const nextCamera = (cameras, camera) => cameras[(cameras.indexOf(camera) + 1) % cameras.length];

/** Stop the camera shown in `video`. */
export function stop(video) {
  video.srcObject?.getTracks?.().forEach((t) => t.stop());
  video.srcObject = null;
}

/** Stop every webcam the page started. */
export function stopAll() {
  for (const video of document.querySelectorAll("video")) stop(video);
}

/** The webcam's current picture. */
export function frame(video) {
  return createImageBitmap(video);
}
