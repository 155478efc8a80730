/* Comment text rules, mirrored from labeling/text.py so the labeler page can show the server's
 * verdict live, before submit. The server stays the judge; tests/browser/test_textrules_js.py runs
 * one table of cases through both and asserts the same lengths and rule codes. A change here needs
 * the same change in labeling/text.py, and the other way round.
 *
 * Python's `str` semantics are ported exactly where they differ from JavaScript's: whitespace is
 * str.isspace() (not String.prototype.trim's set). URLs, e-mail addresses, phone numbers and the
 * other personal information come from the server's table (curation/pii.py, written in the regex
 * dialect both languages read alike), given to configurePii(). Grapheme clusters come from
 * Intl.Segmenter (Python: the `regex` module's \X), casefold() from a table of the characters
 * where it differs from lowercasing.
 *
 * API (window.TextRules): normalise, graphemes, countLength, comparable, check(text, rules,
 * {examples, exampleKeys, ownPrevious}) -> {length, ok, violations: [{code, params}]},
 * format(template, params), message(templates, violation), configurePii(cfg.pii), piiKinds(text).
 * Without configurePii the URL, e-mail, phone and personal-information rules are left to the server.
 */
(function (root) {
  "use strict";

  var INVISIBLE = { "\u200b": 1, "\u2060": 1, "\ufeff": 1, "\u00ad": 1, "\u180e": 1 };
  // str.isspace(): every character Python calls whitespace.
  var SPACE_CLASS = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
  var SPACE_RE = new RegExp("[" + SPACE_CLASS + "]", "u");
  var ALL_SPACE_RE = new RegExp("^[" + SPACE_CLASS + "]+$", "u");
  var CONTROL_OR_FORMAT_RE = /^[\p{Cc}\p{Cf}]+$/u;
  var JAMO_RE = /[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff]/u;
  var LETTER_RE = /\p{L}/u;
  // str.isdigit(): decimal digits plus superscripts, circled digits and the like.
  var DIGIT_RE = /[\p{Nd}\u00b2\u00b3\u00b9\u1369-\u1371\u19da\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468\u2474-\u247c\u2488-\u2490\u24ea\u24f5-\u24fd\u24ff\u2776-\u277e\u2780-\u2788\u278a-\u2792\u{10a40}-\u{10a43}\u{10e60}-\u{10e68}\u{11052}-\u{1105a}\u{1f100}-\u{1f10a}]/u;
  var ALNUM_RE = /[\p{L}\p{N}]/u;


  // str.casefold() where it differs from lowercasing (generated from Python's unicodedata);
  // Cherokee is handled by ranges in fold().
  var FOLD = {
    "\u00b5":"\u03bc","\u00df":"\u0073\u0073","\u0149":"\u02bc\u006e","\u017f":"\u0073","\u01f0":"\u006a\u030c",
    "\u0345":"\u03b9","\u0390":"\u03b9\u0308\u0301","\u03b0":"\u03c5\u0308\u0301","\u03c2":"\u03c3",
    "\u03d0":"\u03b2","\u03d1":"\u03b8","\u03d5":"\u03c6","\u03d6":"\u03c0","\u03f0":"\u03ba","\u03f1":"\u03c1",
    "\u03f5":"\u03b5","\u0587":"\u0565\u0582","\u1c80":"\u0432","\u1c81":"\u0434","\u1c82":"\u043e",
    "\u1c83":"\u0441","\u1c84":"\u0442","\u1c85":"\u0442","\u1c86":"\u044a","\u1c87":"\u0463","\u1c88":"\ua64b",
    "\u1e96":"\u0068\u0331","\u1e97":"\u0074\u0308","\u1e98":"\u0077\u030a","\u1e99":"\u0079\u030a",
    "\u1e9a":"\u0061\u02be","\u1e9b":"\u1e61","\u1e9e":"\u0073\u0073","\u1f50":"\u03c5\u0313",
    "\u1f52":"\u03c5\u0313\u0300","\u1f54":"\u03c5\u0313\u0301","\u1f56":"\u03c5\u0313\u0342",
    "\u1f80":"\u1f00\u03b9","\u1f81":"\u1f01\u03b9","\u1f82":"\u1f02\u03b9","\u1f83":"\u1f03\u03b9",
    "\u1f84":"\u1f04\u03b9","\u1f85":"\u1f05\u03b9","\u1f86":"\u1f06\u03b9","\u1f87":"\u1f07\u03b9",
    "\u1f88":"\u1f00\u03b9","\u1f89":"\u1f01\u03b9","\u1f8a":"\u1f02\u03b9","\u1f8b":"\u1f03\u03b9",
    "\u1f8c":"\u1f04\u03b9","\u1f8d":"\u1f05\u03b9","\u1f8e":"\u1f06\u03b9","\u1f8f":"\u1f07\u03b9",
    "\u1f90":"\u1f20\u03b9","\u1f91":"\u1f21\u03b9","\u1f92":"\u1f22\u03b9","\u1f93":"\u1f23\u03b9",
    "\u1f94":"\u1f24\u03b9","\u1f95":"\u1f25\u03b9","\u1f96":"\u1f26\u03b9","\u1f97":"\u1f27\u03b9",
    "\u1f98":"\u1f20\u03b9","\u1f99":"\u1f21\u03b9","\u1f9a":"\u1f22\u03b9","\u1f9b":"\u1f23\u03b9",
    "\u1f9c":"\u1f24\u03b9","\u1f9d":"\u1f25\u03b9","\u1f9e":"\u1f26\u03b9","\u1f9f":"\u1f27\u03b9",
    "\u1fa0":"\u1f60\u03b9","\u1fa1":"\u1f61\u03b9","\u1fa2":"\u1f62\u03b9","\u1fa3":"\u1f63\u03b9",
    "\u1fa4":"\u1f64\u03b9","\u1fa5":"\u1f65\u03b9","\u1fa6":"\u1f66\u03b9","\u1fa7":"\u1f67\u03b9",
    "\u1fa8":"\u1f60\u03b9","\u1fa9":"\u1f61\u03b9","\u1faa":"\u1f62\u03b9","\u1fab":"\u1f63\u03b9",
    "\u1fac":"\u1f64\u03b9","\u1fad":"\u1f65\u03b9","\u1fae":"\u1f66\u03b9","\u1faf":"\u1f67\u03b9",
    "\u1fb2":"\u1f70\u03b9","\u1fb3":"\u03b1\u03b9","\u1fb4":"\u03ac\u03b9","\u1fb6":"\u03b1\u0342",
    "\u1fb7":"\u03b1\u0342\u03b9","\u1fbc":"\u03b1\u03b9","\u1fbe":"\u03b9","\u1fc2":"\u1f74\u03b9",
    "\u1fc3":"\u03b7\u03b9","\u1fc4":"\u03ae\u03b9","\u1fc6":"\u03b7\u0342","\u1fc7":"\u03b7\u0342\u03b9",
    "\u1fcc":"\u03b7\u03b9","\u1fd2":"\u03b9\u0308\u0300","\u1fd3":"\u03b9\u0308\u0301","\u1fd6":"\u03b9\u0342",
    "\u1fd7":"\u03b9\u0308\u0342","\u1fe2":"\u03c5\u0308\u0300","\u1fe3":"\u03c5\u0308\u0301",
    "\u1fe4":"\u03c1\u0313","\u1fe6":"\u03c5\u0342","\u1fe7":"\u03c5\u0308\u0342","\u1ff2":"\u1f7c\u03b9",
    "\u1ff3":"\u03c9\u03b9","\u1ff4":"\u03ce\u03b9","\u1ff6":"\u03c9\u0342","\u1ff7":"\u03c9\u0342\u03b9",
    "\u1ffc":"\u03c9\u03b9","\ufb00":"\u0066\u0066","\ufb01":"\u0066\u0069","\ufb02":"\u0066\u006c",
    "\ufb03":"\u0066\u0066\u0069","\ufb04":"\u0066\u0066\u006c","\ufb05":"\u0073\u0074","\ufb06":"\u0073\u0074",
    "\ufb13":"\u0574\u0576","\ufb14":"\u0574\u0565","\ufb15":"\u0574\u056b","\ufb16":"\u057e\u0576",
    "\ufb17":"\u0574\u056d"
  };

  var segmenter = (typeof Intl !== "undefined" && Intl.Segmenter) ? new Intl.Segmenter("und", { granularity: "grapheme" }) : null;

  function isSpaceChar(ch) { return SPACE_RE.test(ch); }

  function isSpace(s) { return s.length > 0 && ALL_SPACE_RE.test(s); }

  function strip(s) {
    var chars = Array.from(s);
    var start = 0, end = chars.length;
    while (start < end && isSpaceChar(chars[start])) start++;
    while (end > start && isSpaceChar(chars[end - 1])) end--;
    return chars.slice(start, end).join("");
  }

  /** NFC, invisible format characters removed, ends trimmed (text.normalise). */
  function normalise(text) {
    var nfc = String(text == null ? "" : text).normalize("NFC");
    var out = "";
    for (var ch of nfc) if (!INVISIBLE[ch]) out += ch;
    return strip(out);
  }

  function split(text) {
    if (segmenter) {
      var out = [];
      for (var seg of segmenter.segment(text)) out.push(seg.segment);
      return out;
    }
    return Array.from(text);  // very old browsers: code points (the server still judges)
  }

  function graphemes(text) { return split(normalise(text)); }

  /** Characters as a Korean reader counts them (text.count_length). */
  function countLength(text, countWhitespace) {
    var n = 0;
    for (var g of graphemes(text)) {
      if (CONTROL_OR_FORMAT_RE.test(g)) continue;
      if (!countWhitespace && isSpace(g)) continue;
      n++;
    }
    return n;
  }

  function fold(text) {
    var out = "";
    for (var ch of text) {
      var cp = ch.codePointAt(0);
      if (cp >= 0x13a0 && cp <= 0x13f5) out += ch;
      else if (cp >= 0x13f8 && cp <= 0x13fd) out += String.fromCodePoint(cp - 8);
      else if (cp >= 0xab70 && cp <= 0xabbf) out += String.fromCodePoint(cp - 0xab70 + 0x13a0);
      else if (FOLD.hasOwnProperty(ch)) out += FOLD[ch];
      else out += ch.toLowerCase();
    }
    return out;
  }

  /** For 'same text' checks: NFC, case-folded, only letters and digits kept (text.comparable). */
  function comparable(text) {
    var out = "";
    for (var ch of fold(normalise(text))) if (ALNUM_RE.test(ch)) out += ch;
    return out;
  }

  function hasSubstance(text) {
    for (var ch of text) {
      if (DIGIT_RE.test(ch)) return true;
      if (LETTER_RE.test(ch) && !JAMO_RE.test(ch)) return true;
    }
    return false;
  }

  function longestRun(items) {
    var best = 0, run = 0, prev = null;
    for (var g of items) {
      if (isSpace(g)) { prev = null; run = 0; continue; }
      run = g === prev ? run + 1 : 1;
      prev = g;
      if (run > best) best = run;
    }
    return best;
  }

  var keyCache = typeof WeakMap !== "undefined" ? new WeakMap() : null;

  function keysOf(texts) {
    if (!texts) return null;
    if (texts instanceof Set) return texts;
    var cached = keyCache && keyCache.get(texts);
    if (cached) return cached;
    var keys = new Set();
    for (var t of texts) keys.add(comparable(t));
    if (keyCache) keyCache.set(texts, keys);
    return keys;
  }

  // ---------------------------------------------------------------- personal information
  // curation/pii.py's scan(), run on the table the server renders into the page
  // (configurePii(cfg.pii)): the patterns live on the server only. Spans are counted in code
  // points, as Python counts them, so the context window and overlaps give the same answers.
  var PII = null;
  var OWN_RULE_KINDS = { url: 1, email: 1, phone: 1 };

  function asciiDigits(s) { return s.replace(/[^0-9]/g, ""); }

  var VALIDATORS = {
    luhn: function (text) {
      var d = asciiDigits(text), total = 0;
      for (var i = 0; i < d.length; i++) {
        var n = +d[d.length - 1 - i];
        if (i % 2) n = n > 4 ? n * 2 - 9 : n * 2;
        total += n;
      }
      return total % 10 === 0;
    },
    rrn: function (text) {
      var d = asciiDigits(text);
      if (d.length !== 13) return false;
      var w = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5], total = 0;
      for (var i = 0; i < 12; i++) total += +d[i] * w[i];
      return (11 - total % 11) % 10 === +d[12] ? true : null;
    },
    account_length: function (text) {
      var n = asciiDigits(text).length;
      return n >= 10 && n <= 14 ? null : false;
    }
  };

  /** Use the server's PII table (labeling views' cfg.pii; curation.pii.page_config()). */
  function configurePii(cfg) {
    if (!cfg) { PII = null; return; }
    PII = {
      fold: cfg.fold, numerals: cfg.numerals, numeralRun: new RegExp(cfg.numeral_run, "gu"), numeralMin: cfg.numeral_min,
      reportScore: cfg.report_score, boost: cfg.boost, window: cfg.window, kinds: cfg.kinds,
      recognizers: cfg.recognizers.map(function (r) {
        return { kind: r.kind, name: r.name, re: new RegExp(r.regex, "gdu"), score: r.score,
                 validator: r.validator, context: r.context };
      })
    };
  }

  function piiFold(text) {
    var out = "";
    for (var ch of text) out += PII.fold.hasOwnProperty(ch) ? PII.fold[ch] : ch;
    return out.replace(PII.numeralRun, function (m) {
      var r = "", words = 0;
      for (var c of m) {
        if (PII.numerals.hasOwnProperty(c)) { r += PII.numerals[c]; words++; } else r += c;
      }
      return words < PII.numeralMin ? m : r;
    });
  }

  function piiScan(text) {
    var folded = piiFold(text);
    var cps = Array.from(folded);
    var at = [];  // UTF-16 index -> code point index
    var cp = 0;
    for (var ch of cps) { for (var u = 0; u < ch.length; u++) at.push(cp); cp++; }
    at.push(cp);
    var found = [];
    PII.recognizers.forEach(function (r) {
      r.re.lastIndex = 0;
      for (var m of folded.matchAll(r.re)) {
        var g = m.length > 1 ? 1 : 0;
        var span = m.indices[g];
        var start = at[span[0]], end = at[span[1]];
        var score = r.score;
        if (r.validator) {
          var verdict = VALIDATORS[r.validator](m[g]);
          if (verdict === false) continue;
          if (verdict === true) score = 1.0;
        }
        if (score < 1.0 && r.context.length) {
          var win = cps.slice(Math.max(0, start - PII.window), start).join("") + " " + cps.slice(end, end + PII.window).join("");
          if (r.context.some(function (w) { return win.indexOf(w) >= 0; })) score = Math.min(1.0, score + PII.boost);
        }
        found.push({ kind: r.kind, start: start, end: end, score: score });
      }
    });
    found.sort(function (a, b) {
      return (b.score - a.score) || ((a.start - a.end) - (b.start - b.end)) || (a.start - b.start);
    });
    var kept = [];
    found.forEach(function (f) {
      if (f.score < PII.reportScore) return;
      if (kept.every(function (k) { return f.end <= k.start || f.start >= k.end; })) kept.push(f);
    });
    return kept;
  }

  /** The kinds of personal information in the text, in the server's order (pii.kinds_found). */
  function piiKinds(text) {
    var seen = {};
    piiScan(text).forEach(function (f) { seen[f.kind] = 1; });
    return Object.keys(PII.kinds).filter(function (k) { return seen[k]; });
  }

  /** Every rule the text breaks (text.check): {length, ok, violations: [{code, params}]}.
   * `rules` has the fields of text.Rules; options.examples / options.ownPrevious are raw texts
   * (or options.exampleKeys a Set of comparable() forms). */
  function check(text, rules, options) {
    options = options || {};
    var clean = normalise(text);
    var items = split(clean);
    var n = countLength(clean, !!rules.count_whitespace);
    var out = [];
    var add = function (code, params) { out.push({ code: code, params: params || {} }); };
    var min = rules.min_length == null ? 3 : rules.min_length;
    var max = rules.max_length == null ? 300 : rules.max_length;
    var maxRun = rules.max_repeat_run == null ? 5 : rules.max_repeat_run;
    var on = function (name) { return rules[name] == null ? true : !!rules[name]; };

    if (n < min) add("too_short", { min: min, n: n });
    if (max && n > max) add("too_long", { max: max, n: n });
    if (clean && on("reject_jamo_or_emoji_only") && !hasSubstance(clean)) add("jamo_or_emoji_only");
    if (maxRun && longestRun(items) > maxRun) add("repeated_run");
    var key = comparable(clean);
    if (key && on("reject_copied_examples")) {
      var examples = options.exampleKeys || keysOf(options.examples);
      if (examples && examples.has(key)) add("copied_example");
    }
    if (key && on("reject_own_repeats")) {
      var own = keysOf(options.ownPrevious);
      if (own && own.has(key)) add("own_repeat");
    }
    if (PII && (on("reject_emails") || on("reject_urls") || on("reject_phone_numbers") || on("reject_personal_info"))) {
      var kinds = piiKinds(clean);
      if (on("reject_emails") && kinds.indexOf("email") >= 0) add("email");
      else if (on("reject_urls") && kinds.indexOf("url") >= 0) add("url");
      if (on("reject_phone_numbers") && kinds.indexOf("phone") >= 0) add("phone");
      var other = kinds.filter(function (k) { return !OWN_RULE_KINDS[k]; }).map(function (k) { return PII.kinds[k]; });
      if (on("reject_personal_info") && other.length) add("personal_info", { kinds: other.join(", ") });
    }
    return { length: n, ok: out.length === 0, violations: out };
  }

  /** Python %-formatting of named parameters: "%(min)d" / "%(n)s" / "%%". */
  function format(template, params) {
    params = params || {};
    return String(template).replace(/%\((\w+)\)[sd]|%%/g, function (m, name) {
      if (m === "%%") return "%";
      return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : m;
    });
  }

  /** The violation's message from the server's templates (text.MESSAGES in the page's language);
   * like Python, a message without parameters is used as it is. */
  function message(templates, violation) {
    var template = templates && templates[violation.code];
    if (!template) return violation.code;
    return Object.keys(violation.params || {}).length ? format(template, violation.params) : String(template);
  }

  root.TextRules = {
    normalise: normalise, graphemes: graphemes, countLength: countLength, comparable: comparable,
    check: check, format: format, message: message, configurePii: configurePii, piiKinds: piiKinds
  };
})(typeof window !== "undefined" ? window : globalThis);
