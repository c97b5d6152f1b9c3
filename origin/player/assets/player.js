// edgenode player page: one <video>, three formats, live figures.
// Everything here is served by the node; nothing is fetched from elsewhere
// unless the page is opened with ?base=<origin> (e.g. the CDN's address).
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('config').textContent);
  var q = new URLSearchParams(location.search);
  var base = (q.get('base') || '').replace(/\/+$/, '');
  var video = document.getElementById('video');
  var $ = function (id) { return document.getElementById(id); };

  // Status for people and for tests (read window.edgenode from chromedp).
  var st = window.edgenode = {
    stream: cfg.stream, format: '', url: '', lib: '', currentTime: 0, latency: null,
    libLatency: null, targetLatency: null, buffer: 0, stalls: 0, playing: false,
    width: 0, height: 0, errors: [], clockOffsetMs: 0, startedAt: 0, firstFrameMs: null, catchUps: 0,
    marks: [], log: [], waits: []
  };
  var current = null; // {destroy(), latency(), libLatency(), target(), catchUp()}
  var CATCH_UP_S = 1.0; // s behind the target latency before jumping forward

  function abs(path) { return base + path; }
  function err(msg) {
    st.errors.push(String(msg));
    if (st.errors.length > 50) { st.errors.shift(); }
    $('s-state').textContent = 'error: ' + msg;
  }

  // Clock offset to the node (server minus local, ms), so that latency from
  // program dates is measured on the node's clock.
  function syncClock() {
    var t0 = Date.now();
    return fetch(abs(cfg.timePath), { cache: 'no-store' }).then(function (r) {
      return r.text();
    }).then(function (txt) {
      var t1 = Date.now();
      var server = Date.parse(txt.trim());
      if (!isNaN(server)) { st.clockOffsetMs = server - (t0 + t1) / 2; }
    }).catch(function () { /* no time endpoint: assume synchronised clocks */ });
  }

  // mark notes when a start-up step first happened (ms after the format
  // was selected): window.edgenode.marks.
  function mark(name) { st.marks.push(name + '@' + (Date.now() - st.startedAt)); }

  // retryLater runs f after a second unless another format was selected
  // meanwhile.
  var generation = 0;
  function retryLater(f) {
    var g = generation;
    setTimeout(function () { if (g === generation && current) { f(); } }, 1000);
  }

  function bufferRanges() {
    var b = video.buffered, o = [];
    for (var i = 0; i < b.length; i++) { o.push(b.start(i).toFixed(2) + '-' + b.end(i).toFixed(2)); }
    return o.join(',');
  }
  function debugLog(m) {
    st.log.push((Date.now() - st.startedAt) + ' t=' + video.currentTime.toFixed(2) + ' ' + m);
    if (st.log.length > 1000) { st.log.shift(); }
  }

  function bufferAhead() {
    var b = video.buffered, t = video.currentTime;
    for (var i = 0; i < b.length; i++) {
      if (b.start(i) <= t + 0.1 && t <= b.end(i)) { return b.end(i) - t; }
    }
    return 0;
  }

  function startHls(url, lowLatency) {
    if (!window.Hls || !Hls.isSupported()) { err('hls.js: MediaSource not supported'); return null; }
    // maxLiveSyncPlaybackRate: catch up (faster playback) when behind the
    // target latency, e.g. after starting with the publisher, when the
    // playlist is too short to start at the target.
    // enableWorker false: the node's media is fMP4, which hls.js passes
    // through without transmuxing, and starting its worker held up the
    // first audio fragment by 3–5 s on a loaded machine (start-up marks
    // in node/e2e_test.go: playing 8.7 s after the publisher with the
    // worker, 1.7 s without).
    var conf = { lowLatencyMode: lowLatency, backBufferLength: 30, enableWorker: false, maxLiveSyncPlaybackRate: 1.5 };
    if (lowLatency) {
      // Sync 0.9 s behind the live edge (PART-HOLD-BACK 0.6 s plus room for
      // the part being written, so that a part that is late on a loaded
      // machine does not stall playback; node/e2e_test.go measured
      // 1.05–1.2 s latency from PROGRAM-DATE-TIME, no stall, where 0.6
      // gave 2 stalls in 10 s) and re-sync beyond 3 s: hls.js only
      // honours a maximum latency next to an explicit sync duration. hls.js
      // also adds 1 s to its target after every stall; one stall at a
      // reconnect would then keep it far from live for good.
      conf.liveSyncDuration = 0.9;
      // 3 s, not 2: while starting on a loaded machine the first parts
      // can take more than 2 s to arrive, and every re-sync restarts from
      // the next segment's IDR, so hls.js chased the edge for 5 s before
      // playing (start-up marks in node/e2e_test.go). catchUp() below
      // jumps within what is buffered instead.
      conf.liveMaxLatencyDuration = 3;
      conf.liveSyncOnStallIncrease = 0;
      conf.backBufferLength = 10;
    } else {
      // Legacy HLS: hold back 2 segments instead of 3 (the node's TS
      // segments start with an IDR and are listed only once complete).
      conf.liveSyncDurationCount = 2;
    }
    if (q.get('debug')) {
      // ?debug=1: hls.js's warnings and errors and every fragment and part
      // request, timestamped, in window.edgenode.log (the last 1000), for
      // an operator's console or a test that explains a stall.
      var note = function () { debugLog('hls.js ' + Array.prototype.map.call(arguments, String).join(' ')); };
      var quiet = function () {};
      conf.debug = { trace: quiet, debug: quiet, log: quiet, info: quiet, warn: note, error: note };
    }
    var hls = new Hls(conf);
    if (q.get('debug')) {
      hls.on(Hls.Events.FRAG_LOADING, function (ev, d) {
        debugLog('load ' + d.frag.type + ' ' + d.frag.sn + (d.part ? '.' + d.part.index : '') + ' cc=' + d.frag.cc + ' @' + d.frag.start.toFixed(3));
      });
      hls.on(Hls.Events.FRAG_BUFFERED, function (ev, d) {
        debugLog('buffered ' + d.frag.type + ' ' + d.frag.sn + (d.part ? '.' + d.part.index : '') + ' [' + bufferRanges() + ']');
      });
    }
    hls.on(Hls.Events.ERROR, function (ev, data) {
      if (data.fatal) {
        err('hls.js fatal ' + data.type + ': ' + data.details);
        mark('fatal ' + data.details);
        if (data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR ||
            data.details === Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT ||
            data.details === Hls.ErrorDetails.MANIFEST_PARSING_ERROR) {
          // The stream is not live (yet): the node holds the request a
          // few seconds, then answers 404. Keep asking, so that a page
          // opened before the publisher goes live starts by itself.
          retryLater(function () { hls.loadSource(url); });
        } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR) { hls.startLoad(); }
        else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); }
      }
    });
    // First occurrence of each loading step, for start-up diagnostics.
    [Hls.Events.MANIFEST_LOADED, Hls.Events.LEVEL_LOADED, Hls.Events.AUDIO_TRACK_LOADED,
      Hls.Events.BUFFER_CREATED].forEach(function (name) {
      hls.once(name, function () { mark(name); });
    });
    var seen = {};
    [Hls.Events.FRAG_LOADING, Hls.Events.FRAG_LOADED, Hls.Events.FRAG_BUFFERED].forEach(function (name) {
      hls.on(name, function (ev, data) {
        var k = name + ':' + (data.frag ? data.frag.type + ':' + data.frag.sn + (data.part ? '.' + data.part.index : '') : '');
        if (!seen[name + (data.frag ? data.frag.type : '')] || st.marks.length < 40) {
          seen[name + (data.frag ? data.frag.type : '')] = true;
          if (st.marks.length < 40) { mark(k); }
        }
      });
    });
    if (lowLatency) {
      // An ABR ladder: the transcoded levels' parts appear the encoder's
      // delay after the source's (80–200 ms, 0.45 s on a loaded 2-core box),
      // so a switch from the source to a rung at 0.9 s behind the source's
      // edge left under half a second of buffer and stalled in 2 of 5
      // ladder runs (node/transcode_e2e_test.go). With more than one level,
      // sync 0.3 s further back (set before the first level loads, where
      // hls.js picks its start position).
      hls.on(Hls.Events.MANIFEST_PARSED, function (ev, d) {
        if (d.levels && d.levels.length > 1) { hls.config.liveSyncDuration = conf.liveSyncDuration + 0.3; }
      });
    }
    hls.loadSource(url);
    hls.attachMedia(video);
    window.edgenodeLib = hls; // for diagnostics from the console or a test
    st.lib = 'hls.js ' + Hls.version;
    return {
      destroy: function () { hls.destroy(); },
      latency: function () {
        var d = hls.playingDate;
        if (d) { return (Date.now() + st.clockOffsetMs - d.getTime()) / 1000; }
        return null;
      },
      libLatency: function () { return isFinite(hls.latency) ? hls.latency : null; },
      target: function () { return hls.targetLatency; },
      // hls.js only speeds up within one target duration of its target
      // latency; further behind (typically after starting with the
      // publisher, when the playlist was too short to start at the
      // target) jump forward inside what is already buffered, keeping
      // the target latency's worth of buffer.
      catchUp: function () {
        var lat = hls.latency, target = hls.targetLatency;
        if (!isFinite(lat) || !target || lat - target < CATCH_UP_S) { return false; }
        var to = video.currentTime + bufferAhead() - Math.max(target, 0.5) - 0.3;
        if (to > video.currentTime + CATCH_UP_S) {
          video.currentTime = to;
          return true;
        }
        return false;
      }
    };
  }

  function startDash(url) {
    if (!window.dashjs) { err('dash.js missing'); return null; }
    var p = dashjs.MediaPlayer().create();
    var s = {
      streaming: {
        // Never fall back to an internet time server.
        utcSynchronization: {
          defaultTimingSource: { scheme: 'urn:mpeg:dash:utc:http-iso:2014', value: abs(cfg.timePath) }
        },
        // Seek to the target when more than CATCH_UP_S behind it (the
        // playback rate range of the MPD's ServiceDescription handles the
        // small drifts).
        liveCatchup: { enabled: true, maxDrift: CATCH_UP_S }
      }
    };
    if (cfg.targetLatency > 0) { s.streaming.delay = { liveDelay: cfg.targetLatency }; }
    p.updateSettings(s);
    p.on(dashjs.MediaPlayer.events.ERROR, function (e) {
      var m = e && e.error ? (e.error.message || e.error.code) : e;
      err('dash.js: ' + m);
      mark('error ' + (e && e.error ? e.error.code : ''));
      // 11 MANIFEST_LOADER_LOADING_FAILURE, 25 DOWNLOAD_ERROR_ID_MANIFEST
      // (dash.js 5): the stream is not live (yet), see startHls: keep asking.
      var code = e && e.error ? e.error.code : 0;
      if (code === 11 || code === 25) { retryLater(function () { p.attachSource(url); }); }
    });
    // Loading steps, for start-up diagnostics (as for hls.js above).
    var E = dashjs.MediaPlayer.events;
    [E.MANIFEST_LOADED, E.STREAM_INITIALIZED, E.CAN_PLAY].forEach(function (name) {
      var once = function () { mark(name); p.off(name, once); };
      p.on(name, once);
    });
    p.on(E.FRAGMENT_LOADING_COMPLETED, function (e) {
      var r = e && e.request;
      if (r && st.marks.length < 40) { mark('fragLoaded:' + r.mediaType + ':' + r.index + '@' + (+r.startTime).toFixed(2)); }
    });
    p.on(E.PLAYBACK_SEEKING, function (e) { if (st.marks.length < 40) { mark('seeking@' + (e && e.seekTime !== undefined ? (+e.seekTime).toFixed(2) : '')); } });
    if (q.get('debug')) {
      // ?debug=1 (see startHls): every segment request with how long its
      // segment had been available by the MPD (avail < 0: since), each
      // completed request's bytes, rate changes and seeks, and (every
      // half second, for every format) latency, target and buffer, in
      // window.edgenode.log. This log showed dash.js asking for each
      // segment 0.85 s after it became available while the browser
      // answered the MPD reloads from its cache (dash/http.go).
      p.on(E.FRAGMENT_LOADING_STARTED, function (e) {
        var r = e && e.request;
        if (r && r.mediaType !== 'text') {
          var avail = r.availabilityStartTime ? (new Date(r.availabilityStartTime).getTime() - Date.now()) + 'ms' : '-';
          debugLog('dash.js load ' + r.mediaType + ' ' + r.index + ' @' + (+r.startTime).toFixed(3) + ' atc=' + r.availabilityTimeComplete +
            ' avail ' + avail + ' ll=' + p.getLowLatencyModeEnabled() + ' [' + bufferRanges() + ']');
        }
      });
      p.on(E.FRAGMENT_LOADING_COMPLETED, function (e) {
        var r = e && e.request;
        if (r) { debugLog('dash.js loaded ' + r.mediaType + ' ' + r.index + ' ' + (r.bytesLoaded || 0) + 'B [' + bufferRanges() + ']'); }
      });
      p.on('updateTimeSyncOffset', function (e) { debugLog('dash.js clock offset ' + (e && e.offset) + ' ms'); });
      p.on(E.PLAYBACK_RATE_CHANGED, function (e) { debugLog('dash.js rate ' + (e && e.playbackRate)); });
      p.on(E.PLAYBACK_SEEKING, function (e) { debugLog('dash.js seeking ' + (e && e.seekTime)); });
    }
    p.initialize(video, url, true);
    // New segments: each MPD names the URL of its next version
    // (Location, index.mpd?next=N), which the node answers when segment N
    // starts and a CDN caches for every viewer (origin/dash holdForNext);
    // dash.js follows it on its own, as any stock DASH player does. Its
    // liveDelay is the page's target (origin/player Config.TargetLatency
    // says why 1.5 s), a setting dash.js documents for low latency.
    // Nothing here that a stock dash.js page lacks.
    window.edgenodeLib = p; // for diagnostics from the console or a test
    st.lib = 'dash.js ' + dashjs.Version;
    return {
      destroy: function () { p.reset(); },
      latency: function () { var l = p.getCurrentLiveLatency(); return isFinite(l) && l > 0 ? l : null; },
      libLatency: function () { var l = p.getCurrentLiveLatency(); return isFinite(l) ? l : null; },
      target: function () { var t = p.getTargetLiveDelay(); return isFinite(t) ? t : null; },
      catchUp: function () { return false; } // dash.js: liveCatchup.maxDrift
    };
  }

  function select(format) {
    if (!cfg.urls[format]) { format = cfg.defaultFormat; }
    generation++;
    if (current) { current.destroy(); current = null; }
    video.removeAttribute('src');
    video.load();
    st.format = format; st.url = abs(cfg.urls[format]); st.stalls = 0; st.playing = false;
    st.latency = null; st.libLatency = null; st.startedAt = Date.now(); st.firstFrameMs = null;
    st.errors = []; st.marks = []; st.log = []; st.waits = [];
    var buttons = document.querySelectorAll('#formats button');
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute('aria-pressed', String(buttons[i].dataset.format === format));
    }
    q.set('format', format);
    history.replaceState(null, '', '?' + q.toString());
    if (format === 'll-dash') { current = startDash(st.url); }
    else { current = startHls(st.url, format === 'll-hls'); }
    $('s-format').textContent = format;
    $('s-url').textContent = st.url;
    $('s-lib').textContent = st.lib;
  }

  video.addEventListener('playing', function () {
    if (!st.playing && st.firstFrameMs === null) { st.firstFrameMs = Date.now() - st.startedAt; mark('playing'); }
    st.playing = true;
    $('s-state').textContent = 'playing';
  });
  video.addEventListener('waiting', function () {
    if (st.playing && !video.seeking) {
      st.stalls++;
      // Where each stall happened and how much media was buffered ahead
      // of the playhead: none is a hole or media that came late; a
      // second or more is the browser's pipeline stopping with media to
      // play (e.g. hls.js's low-latency level switch, see
      // node/transcode_e2e_test.go).
      st.waits.push({ t: video.currentTime, ahead: bufferAhead(), ms: Date.now() - st.startedAt });
      if (st.waits.length > 100) { st.waits.shift(); }
    }
    if (q.get('debug')) { debugLog('waiting [' + bufferRanges() + ']'); }
    st.playing = false;
    $('s-state').textContent = 'buffering';
  });
  video.addEventListener('error', function () {
    err('video: ' + (video.error ? video.error.code + ' ' + video.error.message : 'unknown'));
  });

  var ticks = 0;
  function fmt(v) { return v === null || v === undefined ? '–' : v.toFixed(2) + ' s'; }
  setInterval(function () {
    st.currentTime = video.currentTime;
    st.buffer = bufferAhead();
    st.width = video.videoWidth; st.height = video.videoHeight;
    if (current) {
      st.latency = current.latency();
      st.libLatency = current.libLatency();
      st.targetLatency = current.target();
      if (st.playing && current.catchUp()) { st.catchUps++; }
      if (q.get('debug') && ++ticks % 2 === 0) {
        debugLog('tick latency ' + fmt(st.latency) + ' target ' + fmt(st.targetLatency) + ' rate ' + video.playbackRate.toFixed(2) + ' [' + bufferRanges() + ']');
      }
    }
    $('s-latency').textContent = fmt(st.latency) + (st.libLatency !== null ? '  (player: ' + fmt(st.libLatency) + ')' : '');
    $('s-target').textContent = fmt(st.targetLatency);
    $('s-buffer').textContent = fmt(st.buffer);
    $('s-res').textContent = st.width ? st.width + '×' + st.height : '–';
    $('s-stalls').textContent = String(st.stalls);
  }, 250);

  var buttons = document.querySelectorAll('#formats button');
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener('click', function (e) { select(e.currentTarget.dataset.format); });
  }
  $('stream').textContent = cfg.stream;
  syncClock().then(function () { select(q.get('format') || cfg.defaultFormat); });
  setInterval(syncClock, 60000);
})();
