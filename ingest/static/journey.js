/*! journey.js: the website collector of journey (Segment message format). No dependencies. */
(function (window, document) {
  'use strict';

  const VERSION = '0.1.0';
  const PREFIX = 'journey.';
  const COOKIE_DAYS = 365;
  const BATCH_BYTES = 400 * 1024; // under the collector's 500 KB per request
  const BATCH_EVENTS = 500;
  const BEACON_BYTES = 60 * 1024; // browsers cap in-flight beacon/keepalive bodies at 64 KB
  const MAX_DELAY_MS = 5 * 60 * 1000;
  // A page sending a batch leases it, so that another page (the next one after a navigation,
  // another tab) does not send it again meanwhile; if the page dies, the lease runs out.
  const LEASE_MS = 10 * 1000;
  const utf8 = new TextEncoder();

  if (window.journey && window.journey.initialized) return;

  function uuid() {
    // getRandomValues also works on plain-http pages, where crypto.randomUUID is missing.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => (x + 0x100).toString(16).slice(1)).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function local(op, key, value) {
    // localStorage throws when disabled (privacy settings, sandboxed frames): fall back quietly.
    try {
      const ls = window.localStorage;
      if (op === 'get') return ls.getItem(PREFIX + key);
      if (value === null) ls.removeItem(PREFIX + key);
      else ls.setItem(PREFIX + key, value);
      return true;
    } catch (e) {
      return op === 'get' ? null : false;
    }
  }

  function cookie(key, value) {
    const name = `journey_${key}`;
    try {
      if (value === undefined) {
        const hit = document.cookie.split('; ').find((c) => c.startsWith(`${name}=`));
        return hit ? decodeURIComponent(hit.slice(name.length + 1)) : null;
      }
      const age = value === null ? 0 : COOKIE_DAYS * 86400;
      const secure = window.location.protocol === 'https:' ? '; Secure' : '';
      document.cookie = `${name}=${encodeURIComponent(value || '')}; path=/; max-age=${age}; SameSite=Lax${secure}`;
    } catch (e) {
      // Sandboxed documents have no cookies either: the id then lasts for this page only.
    }
    return null;
  }

  // Identity lives in localStorage and in a first-party cookie, so either one alone keeps it.
  function loadId(key) {
    return local('get', key) || cookie(key);
  }

  function saveId(key, value) {
    local('set', key, value);
    cookie(key, value);
  }

  function campaign(search) {
    const params = new URLSearchParams(search);
    const out = {};
    for (const [utm, field] of [['source', 'source'], ['medium', 'medium'], ['campaign', 'name'],
      ['term', 'term'], ['content', 'content']]) {
      const value = params.get(`utm_${utm}`);
      if (value) out[field] = value;
    }
    return Object.keys(out).length ? out : undefined;
  }

  function pageInfo() {
    const loc = window.location;
    return { url: loc.href, path: loc.pathname, referrer: document.referrer, title: document.title,
      search: loc.search };
  }

  function retryAfterMs(response) {
    const header = response.headers.get('Retry-After');
    if (!header) return 0;
    const seconds = Number(header);
    if (!Number.isNaN(seconds)) return seconds * 1000;
    const date = Date.parse(header);
    return Number.isNaN(date) ? 0 : Math.max(0, date - Date.now());
  }

  class Journey {
    constructor() {
      this.initialized = true;
      this.writeKey = null;
      this.options = { host: '', flushAt: 20, flushInterval: 1000, maxQueue: 1000, retryBase: 1000 };
      this.queue = []; // messages not yet handed to the network
      this.inflight = false;
      this.sending = []; // the batch in flight
      this.attempts = 0;
      this.retryAt = 0; // no request before this time (backoff, Retry-After)
      this.timer = null;
      this.timerAt = 0;
      this.callTime = null; // time of a call replayed from the loader's queue
      this.anonymousId = loadId('anonymousId') || uuid();
      saveId('anonymousId', this.anonymousId);
      this.userId = loadId('userId');
    }

    /** Set the write key and options; flushes what an earlier page left in the offline queue. */
    init(writeKey, options) {
      this.writeKey = writeKey;
      Object.assign(this.options, options || {});
      this.options.host = String(this.options.host || '').replace(/\/+$/, '');
      this._persistAdd(this.queue); // calls made before init
      this._adopt();
      if (this.queue.length) this._schedule(0);
      return this;
    }

    page(name, properties) {
      if (typeof name === 'object' && name !== null) [name, properties] = [undefined, name];
      const props = Object.assign(pageInfo(), properties || {});
      if (name) props.name = name;
      return this._enqueue('page', name ? { name, properties: props } : { properties: props });
    }

    track(event, properties) {
      return this._enqueue('track', { event, properties: properties || {} });
    }

    identify(userId, traits) {
      if (typeof userId === 'object' && userId !== null) [userId, traits] = [undefined, userId];
      if (userId !== undefined && userId !== null && userId !== '') {
        this.userId = String(userId);
        saveId('userId', this.userId);
      }
      return this._enqueue('identify', { traits: traits || {} });
    }

    alias(userId, previousId) {
      const previous = previousId || this.userId || this.anonymousId;
      return this._enqueue('alias', { userId: String(userId), previousId: String(previous) });
    }

    group(groupId, traits) {
      return this._enqueue('group', { groupId: String(groupId), traits: traits || {} });
    }

    /** Forget the user: a new anonymous id, no user id (e.g. on log-out). */
    reset() {
      this.userId = null;
      local('set', 'userId', null);
      cookie('userId', null);
      this.anonymousId = uuid();
      saveId('anonymousId', this.anonymousId);
      return this;
    }

    /** Send everything queued now (returns a promise that settles when the request does). */
    flush() {
      return this._send();
    }

    _enqueue(type, fields) {
      const at = new Date(this.callTime || Date.now()).toISOString();
      const message = Object.assign({
        type,
        messageId: uuid(),
        anonymousId: this.anonymousId,
        timestamp: at,
        // With sentAt, lets the collector correct a wrong browser clock (SPEC 1.2).
        originalTimestamp: at,
        context: {
          library: { name: 'journey.js', version: VERSION },
          page: pageInfo(),
          userAgent: window.navigator.userAgent,
          locale: window.navigator.language,
          campaign: campaign(window.location.search),
          channel: 'web',
        },
      }, fields);
      if (this.userId && !message.userId) message.userId = this.userId;
      this.queue.push(message);
      this._persistAdd([message]);
      if (this.queue.length >= this.options.flushAt) this._schedule(0);
      else this._schedule(this.options.flushInterval);
      return this;
    }

    _schedule(delay) {
      const at = Math.max(Date.now() + delay, this.retryAt);
      if (this.timer !== null && this.timerAt <= at) return;
      clearTimeout(this.timer);
      this.timerAt = at;
      this.timer = setTimeout(() => {
        this.timer = null;
        this._send();
      }, at - Date.now());
    }

    _take(limit) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && n < BATCH_EVENTS) {
        bytes += utf8.encode(JSON.stringify(this.queue[n])).length + 1;
        if (n > 0 && bytes > limit) break;
        n += 1;
      }
      return this.queue.splice(0, n);
    }

    _body(batch) {
      const sentAt = new Date().toISOString();
      for (const m of batch) m.sentAt = sentAt;
      return JSON.stringify({ batch, writeKey: this.writeKey, sentAt });
    }

    async _send() {
      if (this.inflight || !this.writeKey || !this.queue.length) return;
      if (window.navigator.onLine === false) return; // the 'online' event resumes
      this.inflight = true;
      const batch = this._take(BATCH_BYTES);
      const body = this._body(batch);
      this.sending = batch;
      this._lease(batch, Date.now() + LEASE_MS);
      let delay = -1; // < 0: delivered or dropped; otherwise retry after delay ms
      let uncertain = false;
      try {
        // text/plain keeps the request "simple": no CORS preflight.
        const response = await window.fetch(`${this.options.host}/v1/batch`, {
          method: 'POST', body, headers: { 'Content-Type': 'text/plain' }, credentials: 'omit',
          keepalive: utf8.encode(body).length < BEACON_BYTES,
        });
        if (response.status === 429 || response.status >= 500) delay = retryAfterMs(response);
      } catch (e) {
        // A network error, or the page navigating away: a keepalive request may still arrive.
        delay = 0;
        uncertain = true;
      }
      this.inflight = false;
      this.sending = [];
      if (delay < 0) {
        this.attempts = 0;
        this.retryAt = 0;
        this._persistRemove(batch); // 2xx delivered; other 4xx will never succeed: drop
        if (this.queue.length >= this.options.flushAt) this._schedule(0);
        else if (this.queue.length) this._schedule(this.options.flushInterval);
        return;
      }
      // Maybe delivered: the lease keeps other pages off it unless this one is gone for long.
      this._lease(batch, uncertain ? Date.now() + LEASE_MS : 0);
      this.queue = batch.concat(this.queue);
      this.attempts += 1;
      const backoff = Math.min(MAX_DELAY_MS, this.options.retryBase * 2 ** (this.attempts - 1));
      // Jitter spreads the retries of many browsers after an outage; Retry-After is a floor.
      this.retryAt = Date.now() + Math.max(delay, backoff * (0.5 + Math.random() / 2));
      this._schedule(0);
    }

    /** On page hide: hand the queue to sendBeacon, which outlives the page. */
    _beacon() {
      // A beacon's answer is never seen: while offline or backing off, the offline queue is safer.
      if (!this.writeKey || window.navigator.onLine === false || Date.now() < this.retryAt) return;
      if (!window.navigator.sendBeacon) return;
      while (this.queue.length) {
        const batch = this._take(BEACON_BYTES);
        if (!window.navigator.sendBeacon(`${this.options.host}/v1/batch`, this._body(batch))) {
          this.queue = batch.concat(this.queue); // stays in the offline queue for the next page
          return;
        }
        this._persistRemove(batch);
      }
    }

    /** Take over what other pages left in the offline queue, except batches they are sending. */
    _adopt() {
      const now = Date.now();
      const leases = this._leases();
      const mine = new Set(this.queue.concat(this.sending).map((m) => m.messageId));
      let wake = Infinity;
      const adopted = [];
      for (const m of this._stored()) {
        const until = leases[m.messageId] || 0;
        if (mine.has(m.messageId)) continue;
        if (until > now) wake = Math.min(wake, until);
        else adopted.push(m);
      }
      this.queue = adopted.concat(this.queue);
      if (wake < Infinity) setTimeout(() => this._adopt(), wake - now + 100);
      if (adopted.length) this._schedule(0);
    }

    _read(name, fallback) {
      try {
        const value = JSON.parse(local('get', `${name}.${this.writeKey}`));
        return value && typeof value === 'object' ? value : fallback;
      } catch (e) {
        return fallback;
      }
    }

    _stored() {
      const list = this._read('queue', []);
      return Array.isArray(list) ? list : [];
    }

    _leases() {
      return this._read('leases', {});
    }

    _lease(messages, until) {
      const leases = this._leases();
      for (const id of Object.keys(leases)) if (leases[id] <= Date.now()) delete leases[id];
      for (const m of messages) {
        if (until) leases[m.messageId] = until;
        else delete leases[m.messageId];
      }
      local('set', `leases.${this.writeKey}`, Object.keys(leases).length ? JSON.stringify(leases) : null);
    }

    _persist(list) {
      // Bounded: the oldest messages go first when a long offline spell fills it.
      const kept = list.slice(-this.options.maxQueue);
      local('set', `queue.${this.writeKey}`, kept.length ? JSON.stringify(kept) : null);
    }

    // Read-modify-write by messageId, so two tabs sharing the queue do not drop each other's.
    _persistAdd(messages) {
      if (!this.writeKey || !messages.length) return;
      const stored = this._stored();
      const have = new Set(stored.map((m) => m.messageId));
      this._persist(stored.concat(messages.filter((m) => !have.has(m.messageId))));
    }

    _persistRemove(messages) {
      const gone = new Set(messages.map((m) => m.messageId));
      this._persist(this._stored().filter((m) => !gone.has(m.messageId)));
      this._lease(messages, 0);
    }
  }

  const stub = Array.isArray(window.journey) ? window.journey : [];
  const journey = new Journey();
  window.journey = journey;

  window.addEventListener('online', () => {
    journey.retryAt = 0;
    journey._schedule(0);
  });
  window.addEventListener('pagehide', () => journey._beacon());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') journey._beacon();
  });

  // Replay calls made before this file loaded: init first, each call with the time it was made.
  const calls = stub.filter((c) => c[0] === 'init').concat(stub.filter((c) => c[0] !== 'init'));
  for (const [method, args, time] of calls) {
    if (typeof journey[method] !== 'function' || method[0] === '_') continue;
    journey.callTime = time || null;
    try {
      journey[method](...args);
    } finally {
      journey.callTime = null;
    }
  }
})(window, document);
