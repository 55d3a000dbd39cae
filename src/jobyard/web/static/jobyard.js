/* jobyard dashboard: live updates from the /api/v1/events WebSocket.
 * Pages are server-rendered; this file refreshes their fragments (through htmx) when events
 * arrive, moves the progress bar and appends log lines on the job page, and draws the charts. */
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const live = document.getElementById("live-status");
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

  function connect(query, onMessage) {
    let delay = 500;
    function open() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/api/v1/events${query}`);
      socket.onopen = () => { delay = 500; live && live.classList.add("on"); };
      socket.onmessage = (message) => onMessage(JSON.parse(message.data));
      socket.onclose = () => {
        live && live.classList.remove("on");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
  }

  /* Re-fetch a server-rendered fragment (its `hx-get` URL) and swap it in, at most once per
   * `gap_ms`. Requests never overlap, and an event that arrives during one causes one more
   * afterwards, so the last state always ends up on screen. */
  function refresher(id, gap_ms) {
    let busy = false, dirty = false, last = 0;
    async function run() {
      busy = true; dirty = false;
      const wait = Math.max(0, last + gap_ms - Date.now());
      if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
      last = Date.now();
      const element = document.getElementById(id);
      try {
        if (element) {
          const response = await fetch(element.getAttribute("hx-get"), { headers: { "HX-Request": "true" } });
          if (response.ok) {
            document.dispatchEvent(new CustomEvent("jobyard:beforeSwap", { detail: { id } }));
            const current = document.getElementById(id);
            if (current) current.outerHTML = await response.text();
            const swapped = document.getElementById(id);
            if (swapped) htmx.process(swapped);
            document.dispatchEvent(new CustomEvent("jobyard:afterSwap", { detail: { id } }));
          }
        }
      } finally {
        busy = false;
        if (dirty) run();
      }
    }
    return function () { if (busy) { dirty = true; } else { run(); } };
  }

  /* The overview's charts: the chosen window (15 min to 24 h) drawn from stored history
   * (/api/v1/history), then extended live: finished jobs from the event stream into the newest
   * bucket, queue depth sampled from /api/v1/pools. */
  function overview() {
    const refreshStats = refresher("overview-stats", 1000);
    const picker = document.getElementById("chart-window");
    const total = document.getElementById("throughput-total");
    const bucketLabel = document.getElementById("throughput-bucket");
    const depthEl = document.getElementById("depth-chart");
    const pools = JSON.parse(depthEl.dataset.pools || "[]");
    const palette = ["#3056d3", "#c98a00", "#1f8a4c", "#8e44ad", "#c0392b", "#16a085"];
    const WINDOW_NAMES = { "15m": "15 minutes", "1h": "hour", "6h": "6 hours", "24h": "24 hours" };
    let bucketS = 60, times = [], done = [], depthSeries = pools.map(() => []);
    const bucketOf = (seconds) => Math.floor(seconds / bucketS) * bucketS;
    /* A fixed x range: the whole window, even before there are points in it. */
    const xScale = { time: true, range: () => [times[0] || bucketOf(Date.now() / 1000), times[times.length - 1] || bucketOf(Date.now() / 1000) + bucketS] };
    const width = (id) => document.getElementById(id).clientWidth || 480;
    const throughput = new uPlot({ width: width("throughput-chart"), height: 200, scales: { x: xScale },
      series: [{}, { label: "finished", stroke: "#3056d3", fill: "rgba(48,86,211,.12)" }] },
      [[], []], document.getElementById("throughput-chart"));
    const depth = new uPlot({ width: width("depth-chart"), height: 200, scales: { x: xScale },
      series: [{}, ...pools.map((p, i) => ({ label: p, stroke: palette[i % palette.length], spanGaps: true }))] },
      [[], ...pools.map(() => [])], depthEl);
    function draw() {
      throughput.setData([times, done]);
      depth.setData([times, ...depthSeries]);
      const sum = done.reduce((a, b) => a + b, 0);
      total.textContent = `${sum} finished in the last ${WINDOW_NAMES[picker.value] || picker.value}`;
      total.dataset.count = String(sum);
    }
    /* Move the window when the clock enters a new bucket. */
    function roll() {
      const now = bucketOf(Date.now() / 1000);
      while (times.length && times[times.length - 1] < now) {
        times.push(times[times.length - 1] + bucketS); done.push(0); depthSeries.forEach((s) => s.push(null));
        times.shift(); done.shift(); depthSeries.forEach((s) => s.shift());
      }
    }
    let loading = null, generation = 0;
    /* Only the newest load is drawn: a reconnect's reload of the old window must not land
     * after, and over, the window just chosen. */
    function load() {
      const mine = ++generation;
      loading = (async () => {
        const response = await fetch(`/api/v1/history?window=${encodeURIComponent(picker.value)}`);
        if (!response.ok || mine !== generation) return;
        const history = await response.json();
        if (mine !== generation) return;
        bucketS = history.bucket_s;
        times = history.times;
        done = times.map((_, i) => history.succeeded[i] + history.failed[i] + history.cancelled[i]);
        depthSeries = pools.map((p) => (history.queued[p] || times.map(() => null)).slice());
        bucketLabel.textContent = bucketS >= 60 ? `${bucketS / 60} min` : `${bucketS} s`;
        roll();
        draw();
      })().finally(() => { if (mine === generation) loading = null; });
      return loading;
    }
    async function sampleDepth() {
      const response = await fetch("/api/v1/pools");
      if (!response.ok || loading) return;
      const byName = Object.fromEntries((await response.json()).map((p) => [p.name, p.queued]));
      roll();
      pools.forEach((p, i) => { if (depthSeries[i].length) depthSeries[i][depthSeries[i].length - 1] = byName[p] || 0; });
      draw();
    }
    let sampling = null;
    const sampleSoon = () => { if (!sampling) sampling = setTimeout(() => { sampling = null; sampleDepth(); }, 1000); };
    picker.value = localStorage.getItem("jobyard.chartWindow") || picker.value;
    picker.addEventListener("change", () => { localStorage.setItem("jobyard.chartWindow", picker.value); load(); });
    setInterval(() => { roll(); draw(); }, 1000);
    setInterval(sampleDepth, 5000);
    load().then(() => {
      sampleDepth();
      connect("", (message) => {
        if (message.kind === "snapshot") { refreshStats(); load(); }  /* (re)connected: catch up */
        if (message.kind !== "events") return;
        roll();
        for (const event of message.events) {
          if (event.kind === "state" && TERMINAL.has(event.state) && done.length) done[done.length - 1] += 1;
        }
        draw();
        refreshStats();
        sampleSoon();
      });
    });
  }

  function jobs() {
    const refreshTable = refresher("jobs-table", 1000);
    const params = new URLSearchParams(location.search);
    const query = new URLSearchParams();
    for (const key of ["type", "pool"]) if (params.get(key)) query.set(key, params.get(key));
    connect(query.toString() ? `?${query}` : "", (message) => {
      if (message.kind === "snapshot") refreshTable();  /* (re)connected: catch up */
      if (message.kind === "events" && message.events.some((e) => e.kind === "state")) refreshTable();
    });
    /* Keep the checked boxes across refreshes. */
    let checked = new Set();
    document.addEventListener("jobyard:beforeSwap", () => {
      checked = new Set([...document.querySelectorAll("#jobs-table input[name=ids]:checked")].map((b) => b.value));
    });
    document.addEventListener("jobyard:afterSwap", () => {
      document.querySelectorAll("#jobs-table input[name=ids]").forEach((b) => { b.checked = checked.has(b.value); });
    });
    document.body.addEventListener("change", (event) => {
      if (event.target.id === "select-all") {
        document.querySelectorAll("#jobs-table input[name=ids]").forEach((b) => { b.checked = event.target.checked; });
      }
    });
  }

  function job() {
    const root = document.getElementById("job-live");
    const jobId = root.dataset.jobId;
    const bar = document.querySelector("#job-progress .bar");
    const text = document.getElementById("job-progress-text");
    const badge = document.getElementById("job-state");
    const log = document.getElementById("job-log");
    const refreshDetails = refresher("job-details", 500);
    function setProgress(fraction, note) {
      const percent = Math.round((fraction || 0) * 100);
      bar.style.width = `${percent}%`;
      document.getElementById("job-progress").setAttribute("aria-valuenow", String(percent));
      text.textContent = `${percent}%` + (note ? ` · ${note}` : "");
    }
    /* Set here, not in a style attribute, which the Content-Security-Policy forbids. */
    bar.style.width = `${document.getElementById("job-progress").getAttribute("aria-valuenow")}%`;
    /* Events from different processes can arrive out of order: keep the newest state. */
    let stateAt = "";
    function setState(state, at) {
      if (at) {
        if (at < stateAt) return;
        stateAt = at;
      }
      badge.textContent = state;
      badge.className = `badge state-${state}`;
      root.dataset.state = state;
    }
    connect(`?job_id=${jobId}`, (message) => {
      if (message.kind === "snapshot" && message.jobs.length) {
        /* (Re)connected: what happened before the stream started is in the snapshot. */
        const current = message.jobs[0];
        setState(current.state, current.updated_at);
        if (current.progress !== null) setProgress(current.progress, current.progress_message);
        refreshDetails();
        return;
      }
      if (message.kind !== "events") return;
      for (const event of message.events) {
        if (event.kind === "progress") setProgress(event.progress, event.message);
        if (event.kind === "log") {
          const line = document.createElement("span");
          line.className = `line level-${(event.level || "info").toLowerCase()}`;
          line.textContent = `${new Date(event.at).toLocaleTimeString()} ${event.level} ${event.message}\n`;
          log.appendChild(line);
          log.scrollTop = log.scrollHeight;
        }
        if (event.kind === "state") {
          setState(event.state, event.at);
          if (event.state === "succeeded") setProgress(1, null);
          refreshDetails();  /* result, error, attempts and the actions the state allows */
        }
      }
    });
  }

  function pools() {
    const refreshPools = refresher("pools", 1000);
    connect("", () => refreshPools());
  }

  /* Re-process: step through POST /api/v1/jobs/rerun (one transaction of re-runs per call)
   * at the chosen rate, moving the progress bar, until nothing matching is left. The campaign
   * is named by its filter, so starting it again resumes it. */
  function rerunCampaign() {
    const form = document.getElementById("rerun-form");
    if (!form) return;
    const bar = form.querySelector(".bar");
    const status = document.getElementById("rerun-status");
    const stop = form.querySelector("button[name=stop]");
    let stopping = false;
    stop.addEventListener("click", () => { stopping = true; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let patch;
      try {
        patch = JSON.parse(form.elements.args_patch.value || "{}");
      } catch (error) {
        status.textContent = `args patch is not valid JSON: ${error.message}`;
        return;
      }
      const rate = Math.max(1, Number(form.elements.rate.value) || 50);
      const body = {
        type: form.elements.type.value,
        states: [form.elements.state.value],
        args_patch: patch,
        limit: Math.min(1000, Math.ceil(rate)),
      };
      if (form.elements.since.value) body.since = new Date(form.elements.since.value).toISOString();
      stopping = false;
      stop.disabled = false;
      form.querySelector("button[type=submit]").disabled = true;
      let submitted = 0;
      try {
        for (;;) {
          const began = Date.now();
          const response = await fetch("/api/v1/jobs/rerun", {
            method: "POST",
            headers: { "content-type": "application/json", "X-CSRF-Token": form.dataset.csrf },
            body: JSON.stringify(body),
          });
          const answer = await response.json();
          if (!response.ok) { status.textContent = `stopped: ${answer.message}`; break; }
          submitted += answer.submitted.length;
          const share = answer.matched ? answer.done / answer.matched : 1;
          bar.style.width = `${Math.round(share * 100)}%`;
          status.textContent = `campaign ${answer.campaign}: ${answer.done} of ${answer.matched} re-run`
            + ` (${submitted} now), ${answer.remaining} left`;
          if (!answer.remaining || !answer.submitted.length) break;
          if (stopping) { status.textContent += " — stopped; start again to resume"; break; }
          const pause = (answer.submitted.length / rate) * 1000 - (Date.now() - began);
          if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
        }
      } catch (error) {
        status.textContent = `stopped: ${error.message}; start again to resume`;
      } finally {
        stop.disabled = true;
        form.querySelector("button[type=submit]").disabled = false;
      }
    });
  }
  rerunCampaign();

  /* The submit form reloads for the chosen job type (no inline handler: CSP). */
  document.body.addEventListener("change", (event) => {
    if (event.target.id === "submit-type") event.target.form.submit();
  });

  /* Moments arrive in UTC (ISO 8601 with Z, as the API writes them); show them in this
   * browser's time zone, keeping the UTC form as the element's title. */
  function localTimes() {
    document.querySelectorAll("time[datetime]:not([data-local])").forEach((element) => {
      const at = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(at.getTime())) return;
      element.textContent = element.hasAttribute("data-clock")
        ? at.toLocaleTimeString() : at.toLocaleString();
      element.setAttribute("data-local", "");
    });
  }
  localTimes();
  document.addEventListener("jobyard:afterSwap", localTimes);
  document.body.addEventListener("htmx:afterSwap", localTimes);

  const pages = { overview, jobs, job, pools };
  if (pages[page]) pages[page]();
})();
