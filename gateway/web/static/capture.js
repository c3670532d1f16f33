// Camera capture shared by the kiosk terminal (kiosk/app.js) and the phone's remote check-in
// (remote/app.js): open the camera into a <video>, then take the frames a liveness challenge
// wants, `every` ms apart, as JPEG blobs (oldest first).

/** Opens the camera (getUserMedia) into `video` and resolves with the stream once frames play. */
export async function openCamera(video, constraints = { width: 640, height: 480 }) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: constraints, audio: false });
  video.srcObject = stream;
  await new Promise((r) => { if (video.readyState >= 2) r(); else video.onloadeddata = r; });
  return stream;
}

/** Stops every track of the stream (null is fine). */
export function stopCamera(stream) {
  if (stream) for (const tr of stream.getTracks()) tr.stop();
}

/** `count` JPEG frames of what `video` shows, `every` ms apart. */
export async function captureFrames(video, count, every, quality = 0.9) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const frames = [];
  for (let i = 0; i < count; i++) {
    canvas.getContext("2d").drawImage(video, 0, 0);
    frames.push(await new Promise((r) => canvas.toBlob(r, "image/jpeg", quality)));
    if (i < count - 1) await new Promise((r) => setTimeout(r, every));
  }
  return frames;
}
