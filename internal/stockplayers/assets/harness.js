// Drives one stock player, configured as its own documentation says for
// low-latency live and nothing more, and records what the test reads:
// window.stock.stats(). /play.html?player=hlsjs|dashjs|shaka&src=<url>
(function () {
  const q = new URLSearchParams(location.search);
  const kind = q.get("player"), src = q.get("src");
  const video = document.getElementById("v");
  const st = (window.stock = {
    player: kind, src, errors: [], waiting: 0, stalls: [], firstPlayMs: null, clock: [],
    loadedAt: performance.now(), p: null,
  });
  // Every SourceBuffer a player creates, with its type, so a stall can
  // say which track ran out (the element's buffered is their
  // intersection). Wrapping addSourceBuffer changes nothing the player
  // sees.
  const sbs = [];
  for (const MS of [window.MediaSource, window.ManagedMediaSource]) {
    if (!MS) continue;
    const add = MS.prototype.addSourceBuffer;
    MS.prototype.addSourceBuffer = function (type) {
      const sb = add.call(this, type);
      sbs.push({ type: String(type).split(";")[0], sb });
      return sb;
    };
  }
  const err = (s) => { if (st.errors.length < 50) st.errors.push(String(s)); };
  window.addEventListener("error", (e) => err("page: " + e.message));
  window.addEventListener("unhandledrejection", (e) => err("page: " + (e.reason && e.reason.stack || e.reason)));

  // The player's own figures: latency (s), the date (ms) of the playhead,
  // and the height of the video rung it plays.
  let latency = () => null, target = () => null, playheadDate = () => null, rung = () => null, level = () => null, estimate = () => null, why = () => "", seekEnd = () => null;
  if (kind === "hlsjs") {
    // https://github.com/video-dev/hls.js/blob/master/docs/API.md#lowlatencymode
    const cfg = { lowLatencyMode: true };
    if (q.get("debug")) {
      // Debugging only (?debug=1): hls.js's own log, each line stamped
      // with the page's clock, in window.stock.log (the test prints the
      // lines around each stall).
      st.log = [];
      const keep = (lvl) => (...a) => {
        if (st.log.length < 20000) st.log.push(((performance.now() - st.loadedAt) / 1000).toFixed(3) + " " + lvl + " " + a.map(String).join(" ").slice(0, 400));
      };
      cfg.debug = { trace: () => {}, debug: keep("D"), log: keep("L"), info: keep("I"), warn: keep("W"), error: keep("E") };
    }
    const p = new Hls(cfg);
    st.p = p;
    p.on(Hls.Events.ERROR, (_, d) => err("hls.js: " + d.type + " " + d.details + (d.fatal ? " (fatal)" : "") +
      " at " + ((performance.now() - st.loadedAt) / 1000).toFixed(2) + "s" + (d.url || (d.context && d.context.url) ? " " + (d.url || d.context.url) : "") +
      (d.reason ? " (" + d.reason + ")" : "") + (d.error && d.error.message ? " " + d.error.message : "")));
    // When hls.js fixed where it starts: at its first media playlist,
    // PART-HOLD-BACK before the edge listed there. It seeks there once
    // its media is buffered and never catches up, so all the time it
    // takes from here to its first frame stays in its latency.
    p.once(Hls.Events.LEVEL_LOADED, () => { st.startChosenMs = performance.now() - st.loadedAt; });
    p.loadSource(src);
    p.attachMedia(video);
    latency = () => p.latency;
    target = () => p.targetLatency;
    playheadDate = () => (p.playingDate ? p.playingDate.getTime() : null);
    rung = () => (p.levels && p.levels[p.currentLevel] ? p.levels[p.currentLevel].height : null);
    level = () => p.currentLevel;
    estimate = () => p.bandwidthEstimate;
  } else if (kind === "dashjs") {
    // https://dashif.org/dash.js/pages/usage/low-latency.html
    const p = dashjs.MediaPlayer().create();
    st.p = p;
    p.updateSettings({ streaming: { delay: { liveDelay: +(q.get("liveDelay") || 1.5) }, liveCatchup: { enabled: true } } });
    p.on(dashjs.MediaPlayer.events.ERROR, (e) => err("dash.js: " + JSON.stringify(e.error || e).slice(0, 300)));
    p.on(dashjs.MediaPlayer.events.PLAYBACK_ERROR, (e) => err("dash.js playback: " + JSON.stringify(e.error || e).slice(0, 300)));
    p.initialize(video, src, true);
    latency = () => p.getCurrentLiveLatency();
    target = () => p.getTargetLiveDelay();
    playheadDate = () => { const t = p.timeAsUTC(); return t ? t * 1000 : null; };
    rung = () => { const r = p.getCurrentRepresentationForType("video"); return r ? r.height : null; };
    level = () => { const r = p.getCurrentRepresentationForType("video"); return r ? r.id : null; };
    estimate = () => p.getAverageThroughput("video") * 1000;
  } else if (kind === "shaka") {
    // https://shaka-player-demo.appspot.com/docs/api/tutorial-config.html (streaming.lowLatencyMode)
    shaka.polyfill.installAll();
    const p = new shaka.Player();
    // Its presentation timeline, read once: getManifest() prints a console
    // warning at every call (its Manifest is not covered by semver), and
    // the timeline object lives as long as the load.
    let tl0 = null;
    const timeline = () => tl0 || (tl0 = (p.getManifest() || {}).presentationTimeline || null);
    st.p = p;
    // e.detail is a shaka.util.Error, or (an internal failure) any other
    // error: JSON.stringify(undefined) has no slice.
    p.addEventListener("error", (e) => {
      const d = e.detail || {};
      err("shaka: " + (d.code !== undefined ? d.code + " " + String(JSON.stringify(d.data)).slice(0, 300) : String(d) + " " + String(d.stack).slice(0, 600)) +
        " at " + ((performance.now() - st.loadedAt) / 1000).toFixed(2) + "s");
    });
    p.configure({ streaming: { lowLatencyMode: true } });
    if (q.get("debug")) {
      // Debugging only (?debug=1): every request Shaka makes, and the
      // playlists it was given, in window.stock.log.
      st.log = [];
      const ne = p.getNetworkingEngine();
      const ts = () => ((performance.now() - st.loadedAt) / 1000).toFixed(3);
      ne.registerRequestFilter((type, req) => st.log.length < 5000 && st.log.push(ts() + " req " + type + " " + JSON.stringify(req.uris)));
      // Why the variant changed: "adaptation" is its ABR's choice,
      // "variantchanged" any other switch (a stream disabled after a
      // failed request, a restriction).
      for (const ev of ["adaptation", "variantchanged"]) {
        p.addEventListener(ev, () => {
          const v = p.getVariantTracks().find((x) => x.active);
          st.log.push(ts() + " " + ev + " to " + (v ? v.height + "p" : "?") + " estimate " + Math.round(p.getStats().estimatedBandwidth));
        });
      }
      // Once a second: the playhead against Shaka's seek range, and the
      // date getPlayheadTimeAsDate gives beside the timeline's own date
      // for the unclamped playhead.
      setInterval(() => {
        try {
          const r = p.seekRange(), tl = timeline();
          const d = p.getPlayheadTimeAsDate();
          const raw = tl ? tl.getProgramDateTimeForTime(video.currentTime) : null;
          const rg = tl && tl.getProgramDateTimeRegionForTime ? tl.getProgramDateTimeRegionForTime(video.currentTime) : null;
          st.log.push(ts() + " clock now " + Date.now() + " t " + video.currentTime.toFixed(3) + " seekEnd " + r.end.toFixed(3) +
            " date " + (d ? d.getTime() : null) + " rawDate " + (raw === null ? null : Math.round(raw * 1000)) +
            " maxSegDur " + (tl ? tl.getMaxSegmentDuration().toFixed(3) : null) +
            " region " + (rg ? rg.start.toFixed(3) + "@" + Math.round(rg.pdt * 1000) : null));
        } catch (e) { st.log.push(ts() + " clock " + e); }
      }, 1000);
      ne.registerResponseFilter((type, res) => {
        if (type === shaka.net.NetworkingEngine.RequestType.MANIFEST && st.log.length < 400) {
          st.log.push("manifest " + res.uri + "\n" + new TextDecoder().decode(res.data));
        }
      });
    }
    if (q.get("debug")) {
      // Debugging only: each video append's first tfdt (s) and the
      // SourceBuffer's timestampOffset then: where Shaka placed it.
      let vts = 0;
      const box = (u, name) => {
        for (let i = 4; i + 4 <= u.length; i++) {
          if (u[i] === name.charCodeAt(0) && u[i + 1] === name.charCodeAt(1) && u[i + 2] === name.charCodeAt(2) && u[i + 3] === name.charCodeAt(3)) return i + 4;
        }
        return -1;
      };
      const ab = SourceBuffer.prototype.appendBuffer;
      SourceBuffer.prototype.appendBuffer = function (data) {
        try {
          const x = sbs.find((y) => y.sb === this);
          if (x && x.type.startsWith("video/") && st.log.length < 5000) {
            const u = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
            const dv = new DataView(u.buffer, u.byteOffset, u.byteLength);
            let i = box(u, "mdhd");
            if (i >= 0) vts = dv.getUint32(i + (u[i] === 1 ? 20 : 12));
            i = box(u, "tfdt");
            if (i >= 0 && vts) {
              const t = u[i] === 1 ? Number(dv.getBigUint64(i + 4)) : dv.getUint32(i + 4);
              st.log.push(((performance.now() - st.loadedAt) / 1000).toFixed(3) + " append tfdt " + (t / vts).toFixed(4) + " tso " + this.timestampOffset.toFixed(4) + " at " + (t / vts + this.timestampOffset).toFixed(4));
            }
          }
        } catch (e) { /* debugging only */ }
        return ab.call(this, data);
      };
    }
    p.attach(video).then(() => p.load(src)).then(() => video.play()).catch((e) => err("shaka load: " + (e.code || "") + " " + (e.message || JSON.stringify(e.data || e).slice(0, 300)) + (e.stack ? " " + e.stack.slice(0, 2000) : "")));
    latency = () => { const s = p.getStats(); return s && isFinite(s.liveLatency) ? s.liveLatency : null; };
    // The shown frame's date as Shaka maps it: getPlayheadTimeAsDate's
    // own mapping (its presentation timeline's program-date-time for a
    // presentation time, else the presentation start plus the time)
    // applied to the playhead itself. getPlayheadTimeAsDate first clamps
    // the playhead to its seek range (Playhead.getTime), a playback
    // guard, not a date: with LL-HLS that range's end trails a playhead
    // started from a fresher playlist, and the date it gave was the
    // range end's (-0.107 s on a fresh clone) — not the frame's.
    playheadDate = () => {
      const tl = timeline();
      if (!tl) return null;
      const ct = video.currentTime, pdt = tl.getProgramDateTimeForTime(ct);
      if (pdt !== null) return pdt * 1000;
      const start = tl.getPresentationStartTime();
      return start === null ? null : (start + ct) * 1000;
    };
    seekEnd = () => p.seekRange().end;
    // getPlayheadTimeAsDate dates its playhead, which it clamps to its
    // seek range, from the program-date-time region holding it.
    why = () => {
      const r = p.seekRange(), tl = timeline(), ct = video.currentTime;
      const rg = tl && tl.getProgramDateTimeRegionForTime ? tl.getProgramDateTimeRegionForTime(ct) : null;
      const raw = tl ? tl.getProgramDateTimeForTime(ct) : null;
      // A region's fields are renamed in Shaka's compiled build: its
      // date is read back through the timeline. Without a region Shaka
      // dates from its initial program date time (the first segment's of
      // whichever audio/video playlist it read last at load) plus t.
      const ipdt = tl && tl.getInitialProgramDateTime ? tl.getInitialProgramDateTime() : null;
      return "t " + ct.toFixed(3) + " seek [" + r.start.toFixed(3) + ", " + r.end.toFixed(3) + "] region " +
        (rg ? rg.start.toFixed(3) + "@" + Math.round(tl.getProgramDateTimeForTime(rg.start) * 1000) : "none") +
        " initial " + (ipdt === null ? "none" : Math.round(ipdt * 1000)) + " unclamped " + (raw === null ? "none" : Math.round(raw * 1000));
    };
    rung = () => { const t = p.getVariantTracks().find((x) => x.active); return t ? t.height : null; };
    level = () => { const t = p.getVariantTracks().find((x) => x.active); return t ? t.id : null; };
    estimate = () => p.getStats().estimatedBandwidth;
  } else {
    err("unknown player " + kind);
  }

  // Stalls: a "waiting" after playback began, until "playing" again.
  let stallStart = null;
  video.addEventListener("playing", () => {
    if (st.firstPlayMs === null) { st.firstPlayMs = performance.now() - st.loadedAt; st.firstPlayDate = Date.now(); }
    if (stallStart !== null) {
      st.stalls.push({ at: (stallStart - st.loadedAt) / 1000, dur: (performance.now() - stallStart) / 1000 });
      stallStart = null;
    }
  });
  // Each stall's picture of the buffers (the test prints them): where the
  // playhead stood and every buffered range, per SourceBuffer where the
  // player's MediaSource can be reached (hls.js: media.srcObject is not
  // used, so the combined ranges of the element and hls.js's public
  // mainForwardBufferInfo).
  const ranges = (b) => { const r = []; for (let i = 0; i < b.length; i++) r.push(b.start(i).toFixed(3) + "-" + b.end(i).toFixed(3)); return r.join(","); };
  video.addEventListener("waiting", () => {
    if (st.firstPlayMs === null || stallStart !== null) return;
    st.waiting++;
    stallStart = performance.now();
    if (st.stallInfo === undefined) st.stallInfo = [];
    if (st.stallInfo.length < 20) {
      let extra = "";
      try { if (kind === "hlsjs" && st.p.mainForwardBufferInfo) extra = " main ahead " + st.p.mainForwardBufferInfo.len.toFixed(2) + " level " + st.p.currentLevel; } catch (e) { /* diagnostics only */ }
      for (const x of sbs) {
        try { extra += " " + x.type + " [" + ranges(x.sb.buffered) + "]"; } catch (e) { /* removed */ }
      }
      st.stallInfo.push("at " + ((stallStart - st.loadedAt) / 1000).toFixed(2) + "s t=" + video.currentTime.toFixed(2) + " buffered [" + ranges(video.buffered) + "]" + extra);
      // Half a second on, still stalled: did media arrive (a hole at the
      // playhead) or not (loading fell behind)?
      const began = stallStart;
      setTimeout(() => {
        if (stallStart !== began) return;
        let later = "";
        for (const x of sbs) {
          try { later += " " + x.type + " [" + ranges(x.sb.buffered) + "]"; } catch (e) { /* removed */ }
        }
        st.stallInfo.push("  0.5 s into it: t=" + video.currentTime.toFixed(3) + " readyState " + video.readyState + later);
      }, 500);
    }
  });

  // The pixel clock, read from a shown frame about twice a second: the
  // capture time drawn by the publisher against the date the player gives
  // the same frame (its playhead date, moved back to the frame's media
  // time) and against the wall clock when it is shown.
  const cv = document.createElement("canvas");
  cv.width = 320; cv.height = 180;
  const cctx = cv.getContext("2d", { willReadFrequently: true });
  let lastRead = 0;
  const videoOffset = () => {
    for (const x of sbs) {
      try { if (x.type.startsWith("video/")) return x.sb.timestampOffset; } catch (e) { /* removed */ }
    }
    return null;
  };
  const onFrame = (now, md) => {
    const wall = Date.now();
    if (wall - lastRead >= 500 && video.videoWidth > 0) {
      lastRead = wall;
      const ct = video.currentTime, pd = playheadDate(), se = seekEnd();
      cctx.drawImage(video, 0, 0, cv.width, cv.height);
      const cap = pixelClock.read(cctx, cv.width, cv.height, wall);
      if (cap !== null && st.clock.length < 1000) {
        st.clock.push({
          wall, capture: cap, g2g: wall - cap,
          playerDate: pd === null ? null : pd - (ct - md.mediaTime) * 1000,
          height: video.videoHeight,
          // The frame's media time and the video SourceBuffer's
          // timestampOffset: media time less the offset is the frame's
          // time in the segments (tfdt), which the node dates.
          // The playhead and the end of the player's seek range (Shaka
          // dates its playhead clamped to that range).
          time: ct, seekEnd: se,
          media: md.mediaTime, tso: videoOffset(), why: String((() => { try { return why(); } catch (e) { return String(e); } })()),
        });
      }
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);

  st.stats = () => {
    const ct = video.currentTime;
    let ahead = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= ct + 0.1 && video.buffered.end(i) > ct) ahead = video.buffered.end(i) - ct;
    }
    const safe = (f) => { try { const v = f(); return v === undefined || (typeof v === "number" && !isFinite(v)) ? null : v; } catch (e) { return null; } };
    return {
      now: Date.now(), currentTime: ct, ahead, paused: video.paused, readyState: video.readyState,
      width: video.videoWidth, height: video.videoHeight,
      latency: safe(latency), target: safe(target),
      // The player's bandwidth estimate (bit/s) and the browser's
      // navigator.connection.downlink (Mbit/s), for ABR diagnostics.
      estimate: safe(estimate), downlink: safe(() => navigator.connection.downlink), playheadDate: safe(playheadDate), rung: safe(rung), level: String(safe(level)),
      waiting: st.waiting, stalls: st.stalls, stalled: stallStart !== null ? (performance.now() - stallStart) / 1000 : 0,
      firstPlayMs: st.firstPlayMs, startChosenMs: st.startChosenMs === undefined ? null : st.startChosenMs, firstPlayDate: st.firstPlayDate || null, errors: st.errors, stallInfo: st.stallInfo || [], frames: (video.getVideoPlaybackQuality && video.getVideoPlaybackQuality().totalVideoFrames) || 0,
    };
  };
})();
