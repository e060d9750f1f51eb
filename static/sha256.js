// SHA-256 of a File read in slices, so a multi-gigabyte model is hashed without holding it in memory
// (crypto.subtle.digest only takes the whole input at once). window.flashmlSha256(file, onProgress) returns a
// Promise of the hex digest; onProgress(bytesHashed) is called after each slice.
(function () {
  "use strict";

  var SLICE = 4 * 1024 * 1024;
  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  function Sha256() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Uint32Array(64);
    this.buf = new Uint8Array(64);
    this.bufLen = 0;
    this.total = 0;
  }

  Sha256.prototype.block = function (d, o) {
    var w = this.w, h = this.h, i, x, y;
    for (i = 0; i < 16; i++) {
      w[i] = (d[o + 4 * i] << 24) | (d[o + 4 * i + 1] << 16) | (d[o + 4 * i + 2] << 8) | d[o + 4 * i + 3];
    }
    for (i = 16; i < 64; i++) {
      x = w[i - 15];
      y = w[i - 2];
      w[i] = (w[i - 16] + (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) + w[i - 7] +
              (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) | 0;
    }
    var a = h[0], b = h[1], c = h[2], e = h[4], f = h[5], g = h[6], dd = h[3], hh = h[7], t1, t2;
    for (i = 0; i < 64; i++) {
      t1 = (hh + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
            ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
            ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (dd + t1) | 0; dd = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += dd; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  };

  Sha256.prototype.update = function (bytes) {
    var i = 0, n = bytes.length;
    this.total += n;
    if (this.bufLen) {
      while (this.bufLen < 64 && i < n) this.buf[this.bufLen++] = bytes[i++];
      if (this.bufLen < 64) return;
      this.block(this.buf, 0);
      this.bufLen = 0;
    }
    for (; i + 64 <= n; i += 64) this.block(bytes, i);
    while (i < n) this.buf[this.bufLen++] = bytes[i++];
  };

  Sha256.prototype.hex = function () {
    var bits = this.total * 8;
    var pad = new Uint8Array((this.bufLen < 56 ? 56 : 120) - this.bufLen + 8);
    var n = pad.length, hi = Math.floor(bits / 0x100000000), lo = bits >>> 0, out = "", i;
    pad[0] = 0x80;
    for (i = 0; i < 4; i++) {
      pad[n - 8 + i] = (hi >>> (24 - 8 * i)) & 255;
      pad[n - 4 + i] = (lo >>> (24 - 8 * i)) & 255;
    }
    this.update(pad);
    for (i = 0; i < 8; i++) out += ("00000000" + this.h[i].toString(16)).slice(-8);
    return out;
  };

  window.flashmlSha256 = function (file, onProgress) {
    var hash = new Sha256();
    function next(offset) {
      if (offset >= file.size) return Promise.resolve(hash.hex());
      return file.slice(offset, offset + SLICE).arrayBuffer().then(function (buffer) {
        hash.update(new Uint8Array(buffer));
        if (onProgress) onProgress(Math.min(offset + SLICE, file.size));
        return next(offset + SLICE);
      });
    }
    return next(0);
  };
})();
