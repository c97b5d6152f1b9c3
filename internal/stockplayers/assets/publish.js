// A WHIP publisher (RFC 9725 §4.2) whose picture is the pixel clock:
// /publish.html?whip=<url>&w=1280&h=720&fps=30. window.publisher.status is
// "live" once the WHIP resource exists and ICE connected.
(function () {
  const q = new URLSearchParams(location.search);
  const w = +q.get("w") || 1280, h = +q.get("h") || 720, fps = +q.get("fps") || 30, noise = q.get("noise") === "1";
  const pub = (window.publisher = { status: "starting", error: "", width: 0, height: 0, fps: 0, kbps: 0, frames: 0 });
  const c = document.getElementById("c");
  c.width = w; c.height = h;
  const ctx = c.getContext("2d");
  function draw() {
    const now = Date.now();
    // Some motion below the clock, so the encoders see a moving picture.
    const x = (now / 8) % w;
    ctx.fillStyle = "#246";
    ctx.fillRect(0, h / 4, w, h * 3 / 4);
    ctx.fillStyle = "#e83";
    ctx.fillRect(x, h / 2, w / 10, h / 5);
    if (noise) {
      // A picture that is hard to encode (&noise=1): random blocks every
      // frame, so the encoders run near their rate caps, as a camera does.
      for (let i = 0; i < 150; i++) {
        ctx.fillStyle = "rgb(" + (Math.random() * 255 | 0) + "," + (Math.random() * 255 | 0) + "," + (Math.random() * 255 | 0) + ")";
        ctx.fillRect(Math.random() * w, h / 4 + Math.random() * h / 2, 32 + Math.random() * 48, 32 + Math.random() * 48);
      }
    }
    ctx.fillStyle = "#fff";
    ctx.font = (h / 12) + "px sans-serif";
    ctx.fillText(new Date(now).toISOString().slice(11, 23), w / 20, h * 0.9);
    pixelClock.draw(ctx, w, h, now);
    pub.frames++;
    // Captured as soon as it is drawn: the frame's capture time, which
    // the node dates it by, is then the time drawn into it. With
    // captureStream(fps) Chrome took the picture at its next capture tick,
    // up to a frame and a half after the drawing (the node's dates read
    // +47 ms against the drawn clock on a quiet box).
    if (vtrack) vtrack.requestFrame();
  }
  // Frames only on requestFrame (W3C mediacapture-fromelement §3.1:
  // frameRequestRate 0).
  const stream = c.captureStream(0);
  const vtrack = stream.getVideoTracks()[0];
  draw();
  setInterval(draw, 1000 / fps);
  const ac = new AudioContext();
  const osc = ac.createOscillator();
  const dst = ac.createMediaStreamDestination();
  osc.frequency.value = 440;
  osc.connect(dst);
  osc.start();
  stream.addTrack(dst.stream.getAudioTracks()[0]);

  (async function () {
    try {
      const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
      pub.pc = pc;
      // Listening from the start: ICE may connect while the answer is
      // still being applied (setParameters below), and a listener added
      // after that missed the event and left the page "starting".
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "connected") pub.status = "live";
        if (pc.connectionState === "failed") { pub.status = "error"; pub.error = "ICE failed"; }
      });
      const vt = pc.addTransceiver(stream.getVideoTracks()[0], { direction: "sendonly", streams: [stream] });
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendonly", streams: [stream] });
      const caps = RTCRtpSender.getCapabilities("video").codecs;
      vt.setCodecPreferences(caps.filter((k) => /h264/i.test(k.mimeType) && /packetization-mode=1/.test(k.sdpFmtpLine || ""))
        .concat(caps.filter((k) => /rtx/i.test(k.mimeType))));
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((r) => {
        if (pc.iceGatheringState === "complete") return r();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && r());
        setTimeout(r, 2000);
      });
      const res = await fetch(q.get("whip"), { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
      if (res.status !== 201) throw new Error("WHIP POST: HTTP " + res.status + ": " + (await res.text()));
      pub.resource = new URL(res.headers.get("Location"), q.get("whip")).href;
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      // As the node's Go Live page does (ingest/golive.html holdResolution):
      // a constant picture size, frame rate and quality give way instead.
      try {
        const p = vt.sender.getParameters();
        p.degradationPreference = "maintain-resolution";
        await vt.sender.setParameters(p);
      } catch (e) { pub.note = "degradationPreference: " + e; }
      let last = null;
      setInterval(async () => {
        (await pc.getStats()).forEach((s) => {
          if (s.type !== "outbound-rtp" || s.kind !== "video") return;
          pub.width = s.frameWidth || 0; pub.height = s.frameHeight || 0; pub.fps = s.framesPerSecond || 0;
          if (last) pub.kbps = Math.round((s.bytesSent - last.bytesSent) * 8 / (s.timestamp - last.timestamp));
          last = s;
        });
      }, 1000);
    } catch (e) {
      pub.status = "error";
      pub.error = String(e.message || e);
    }
  })();
})();
