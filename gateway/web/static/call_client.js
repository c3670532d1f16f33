// One party's side of a remote video session (streams/calls.py): the browser sends its camera
// and microphone to the gateway and receives one composite picture (every party in a grid)
// and the others' voices. Used by the console's call window, the join page (/call) and the
// kiosk app.
//
// Signalling is one request per join: the offer with its ICE candidates gathered, the answer
// back (`join(sdp)` posts it where the caller may). A connection that fails is joined again
// (the gateway notes the gap in the proceeding) until `hangup()`.

const GATHER_MS = 2500;
const RETRY_MS = [1000, 2000, 4000, 8000];
// "disconnected" this long is taken as lost: joining again tells whether the session goes on
// (a new connection) or has ended (refused), instead of waiting the ~30 s until "failed"
const DISCONNECTED_MS = 4000;

async function localMedia() {
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 10, max: 15 } };
  for (const wanted of [{ video, audio: true }, { video, audio: false }, { video: false, audio: true }]) {
    try {
      return await navigator.mediaDevices.getUserMedia(wanted);
    } catch (e) {
      if (e.name === "NotAllowedError") throw e;  // refused: say so rather than join blind
    }
  }
  return null;  // no camera or microphone: the party still sees and hears the others
}

async function offerOf(pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    setTimeout(resolve, GATHER_MS);
  });
  return pc.localDescription.sdp;
}

/**
 * Join a session. `join(sdp)` -> {sdp, party_id, session_id}; `video` shows the composite;
 * `onState(state)` hears "connecting", "connected", "reconnecting", "ended" and "failed".
 * Returns {mute(on), muted(), hangup(), stream}.
 */
export async function connect({ join, video, onState = () => {} }) {
  const stream = await localMedia();
  let pc = null;
  let closed = false;
  let attempt = 0;
  let retryTimer = null;
  const remote = new MediaStream();
  video.srcObject = remote;

  async function open() {
    if (closed) return;
    onState(attempt ? "reconnecting" : "connecting");
    const mine = new RTCPeerConnection();
    pc = mine;
    if (stream) for (const track of stream.getTracks()) mine.addTrack(track, stream);
    for (const kind of ["video", "audio"]) {
      if (!stream || !stream.getTracks().some((t) => t.kind === kind)) mine.addTransceiver(kind, { direction: "recvonly" });
    }
    mine.ontrack = (ev) => {
      for (const old of remote.getTracks().filter((t) => t.kind === ev.track.kind)) remote.removeTrack(old);
      remote.addTrack(ev.track);
      video.play?.().catch(() => {});
    };
    let lost = null;
    mine.onconnectionstatechange = () => {
      if (pc !== mine || closed) return;
      clearTimeout(lost);
      if (mine.connectionState === "connected") { attempt = 0; onState("connected"); }
      if (mine.connectionState === "failed") retry();
      if (mine.connectionState === "disconnected") lost = setTimeout(() => pc === mine && mine.connectionState !== "connected" && retry(), DISCONNECTED_MS);
    };
    try {
      const answer = await join(await offerOf(mine));
      if (pc !== mine || closed) return;
      await mine.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch (e) {
      if (e.status && e.status < 500 && e.status !== 429) {  // refused (ended, left, not allowed): no point retrying
        closed = true;
        onState("failed", e);
        return;
      }
      retry();
    }
  }

  function retry() {
    if (closed || retryTimer) return;
    try { pc?.close(); } catch { /* already closed */ }
    const wait = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
    attempt += 1;
    onState("reconnecting");
    retryTimer = setTimeout(() => { retryTimer = null; open(); }, wait);
  }

  await open();
  return {
    stream,
    mute(on) { for (const t of stream?.getAudioTracks() || []) t.enabled = !on; },
    muted() { return !(stream?.getAudioTracks() || []).some((t) => t.enabled); },
    hangup() {
      closed = true;
      clearTimeout(retryTimer);
      try { pc?.close(); } catch { /* already closed */ }
      for (const t of stream?.getTracks() || []) t.stop();
      onState("ended");
    },
  };
}
