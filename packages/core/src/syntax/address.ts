// Reverse-path / forward-path parsing for MAIL FROM, RCPT TO and VRFY with aiosmtpd's semantics.
//
// aiosmtpd hands the text after "FROM:"/"TO:" to Python's RFC 5322 parser
// (email._header_value_parser.get_angle_addr / get_addr_spec) and keeps its addr_spec. That parser
// is lenient in well-defined ways (comments, source routes, obsolete local parts, a missing ">"),
// and clients depend on that leniency, so this scanner reproduces it without building a parse tree.
// It never backtracks except for one retry when "<" is followed by a source route, and nests
// comments with a counter, so hostile input costs linear time and no stack.

export interface PathOptions {
  /** Accept non-ASCII (already UTF-8-decoded) addresses, as aiosmtpd does when SMTPUTF8 is enabled. */
  readonly smtpUtf8: boolean;
  /** Longest accepted local part in code points; 0 disables the check (aiosmtpd local_part_limit). */
  readonly localPartLimit: number;
}

/**
 * On success, address is "" when nothing was given (the caller answers 501) and "<>" for the null
 * path, and rest is the parameter text. "malformed" is what aiosmtpd answers with 553.
 */
export type PathResult =
  | { ok: true; address: string; rest: string }
  | { ok: false; error: "malformed" };

const MALFORMED: PathResult = { ok: false, error: "malformed" };

const END = -1;
const TAB = 0x09;
const SP = 0x20;
const DQUOTE = 0x22;
const LPAREN = 0x28;
const RPAREN = 0x29;
const COMMA = 0x2c;
const DOT = 0x2e;
const COLON = 0x3a;
const SEMICOLON = 0x3b;
const LT = 0x3c;
const GT = 0x3e;
const AT = 0x40;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;

/** RFC 5322 3.2.3 specials: the characters that end an atom (besides whitespace). */
function isSpecial(c: number): boolean {
  switch (c) {
    case LPAREN:
    case RPAREN:
    case LT:
    case GT:
    case LBRACKET:
    case RBRACKET:
    case COLON:
    case SEMICOLON:
    case AT:
    case BACKSLASH:
    case COMMA:
    case DOT:
    case DQUOTE:
      return true;
    default:
      return false;
  }
}

/** RFC 5322 3.2.3 atext, as loosely as Python reads it: anything but specials and WSP. */
function isAtext(c: number): boolean {
  return c !== END && c !== SP && c !== TAB && !isSpecial(c);
}

/** Python's phrase ends (specials minus '.', '"', '(' and '\'): where an obs-local-part stops. */
function endsLocalPart(c: number): boolean {
  return (
    c === END || (isSpecial(c) && c !== DOT && c !== DQUOTE && c !== LPAREN && c !== BACKSLASH)
  );
}

function trimWsp(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isWsp(text.charCodeAt(start))) start++;
  while (end > start && isWsp(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isWsp(c: number): boolean {
  return c === SP || c === TAB;
}

// Kinds of local-part items; how CFWS between them is rendered depends on its neighbours.
const NONE = 0;
const WORD = 1;
const DOT_ITEM = 2;
const BACKSLASH_ITEM = 3;

interface AddrSpec {
  /** Unquoted local part content. */
  local: string;
  /** null for a domainless path such as "Postmaster". */
  domain: string | null;
}

class PathScanner {
  pos = 0;

  constructor(private readonly text: string) {}

  peek(): number {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : END;
  }

  /** RFC 5322 3.2.2 CFWS = (1*([FWS] comment) [FWS]) / FWS; comments are dropped. */
  skipCfws(): void {
    for (;;) {
      const c = this.peek();
      if (isWsp(c)) this.pos++;
      else if (c === LPAREN) this.skipComment();
      else return;
    }
  }

  /**
   * RFC 5322 3.2.2 comment = "(" *([FWS] ccontent) [FWS] ")", ccontent nests. A depth counter
   * instead of recursion keeps "((((..." from exhausting the stack; an unclosed comment runs to the
   * end of the text, which Python tolerates.
   */
  private skipComment(): void {
    const text = this.text;
    let depth = 0;
    while (this.pos < text.length) {
      const c = text.charCodeAt(this.pos++);
      // quoted-pair: the escaped character neither opens nor closes a comment.
      if (c === BACKSLASH) this.pos++;
      else if (c === LPAREN) depth++;
      else if (c === RPAREN && --depth === 0) return;
    }
    this.pos = text.length;
  }

  /** 1*atext */
  private atom(): string {
    const start = this.pos;
    while (isAtext(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /**
   * RFC 5322 3.2.4 quoted-string, returning its content with quoted-pairs undone. Whitespace inside
   * is kept verbatim; an unterminated string runs to the end of the text (Python tolerates it).
   */
  private quotedString(): string {
    const text = this.text;
    let out = "";
    let start = ++this.pos;
    while (this.pos < text.length) {
      const c = text.charCodeAt(this.pos);
      if (c === DQUOTE) {
        out += text.slice(start, this.pos++);
        return out;
      }
      if (c === BACKSLASH) {
        // quoted-pair: keep the escaped character, drop the backslash (a final lone one too).
        out += text.slice(start, this.pos);
        start = this.pos + 1;
        this.pos += 2;
      } else {
        this.pos++;
      }
    }
    if (start < text.length) out += text.slice(start);
    this.pos = text.length;
    return out;
  }

  /**
   * RFC 5322 4.4 obs-local-part = word *("." word), read as Python does: words may also follow
   * each other without a dot and a stray "\" counts as text (both only flagged as defects there).
   * CFWS between two words, or between a word and a "\", reads as one space; next to a dot or at
   * either end it disappears. Returns null when there is no local part at all.
   */
  localPart(): string | null {
    let out = "";
    let previous = NONE;
    let spaced = false;
    for (;;) {
      const c = this.peek();
      if (isWsp(c) || c === LPAREN) {
        this.skipCfws();
        spaced = true;
        continue;
      }
      let kind: number;
      let part: string;
      if (c === DOT) {
        kind = DOT_ITEM;
        part = ".";
        this.pos++;
      } else if (c === BACKSLASH) {
        kind = BACKSLASH_ITEM;
        part = "\\";
        this.pos++;
      } else if (c === DQUOTE) {
        kind = WORD;
        part = this.quotedString();
      } else if (endsLocalPart(c)) {
        break;
      } else {
        kind = WORD;
        part = this.atom();
      }
      if (spaced && (previous === WORD || kind === WORD) && isGlued(previous) && isGlued(kind)) {
        out += " ";
      }
      out += part;
      previous = kind;
      spaced = false;
    }
    return previous === NONE ? null : out;
  }

  /**
   * RFC 5322 3.4.1 domain = dot-atom / domain-literal / obs-domain, with obs-domain's CFWS around
   * the dots removed from the result. Returns null when malformed.
   */
  domain(): string | null {
    this.skipCfws();
    if (this.peek() === LBRACKET) return this.domainLiteral();
    if (!isAtext(this.peek())) return null;
    // dot-atom-text = 1*atext *("." 1*atext)
    let out = this.atom();
    while (this.peek() === DOT && isAtext(this.charAt(this.pos + 1))) {
      this.pos++;
      out += `.${this.atom()}`;
    }
    this.skipCfws();
    // "a@b@c": Python refuses a second "@" straight after the domain's dot-atom.
    if (this.peek() === AT) return null;
    // obs-domain = atom *("." atom), each atom with optional CFWS around it.
    while (this.peek() === DOT) {
      this.pos++;
      this.skipCfws();
      if (!isAtext(this.peek())) return null;
      out += `.${this.atom()}`;
      this.skipCfws();
    }
    return out;
  }

  /**
   * RFC 5322 3.4.1 domain-literal = [CFWS] "[" *([FWS] dtext) [FWS] "]" [CFWS], e.g. "[1.2.3.4]"
   * or RFC 5321 "[IPv6:...]". Like Python, the content is a single run without inner whitespace.
   * Unlike Python (which crashes on an unclosed literal and unescapes "\]"), an unclosed, empty or
   * backslash-containing literal is malformed: none of them is an RFC 5321 address-literal.
   */
  private domainLiteral(): string | null {
    this.pos++;
    while (isWsp(this.peek())) this.pos++;
    const start = this.pos;
    for (;;) {
      const c = this.peek();
      if (c === END || c === BACKSLASH) return null;
      if (isWsp(c) || c === LBRACKET || c === RBRACKET) break;
      this.pos++;
    }
    const content = this.text.slice(start, this.pos);
    while (isWsp(this.peek())) this.pos++;
    if (this.peek() !== RBRACKET || content === "") return null;
    this.pos++;
    this.skipCfws();
    return `[${content}]`;
  }

  /** RFC 5322 3.4.1 addr-spec = local-part "@" domain; the domain is optional ("Postmaster"). */
  addrSpec(): AddrSpec | null {
    const local = this.localPart();
    if (local === null) return null;
    if (this.peek() !== AT) return { local, domain: null };
    this.pos++;
    const domain = this.domain();
    return domain === null ? null : { local, domain };
  }

  /**
   * RFC 5322 4.4 obs-route = obs-domain-list ":", with
   * obs-domain-list = *(CFWS / ",") "@" domain *("," [CFWS] ["@" domain]).
   * RFC 5321 4.1.2 says source routes MUST be accepted and SHOULD be ignored, so it is skipped.
   */
  obsRoute(): boolean {
    for (;;) {
      const c = this.peek();
      if (c === COMMA) this.pos++;
      else if (isWsp(c) || c === LPAREN) this.skipCfws();
      else break;
    }
    if (this.peek() !== AT) return false;
    this.pos++;
    if (this.domain() === null) return false;
    while (this.peek() === COMMA) {
      this.pos++;
      this.skipCfws();
      if (this.peek() === AT) {
        this.pos++;
        if (this.domain() === null) return false;
      }
    }
    if (this.peek() !== COLON) return false;
    this.pos++;
    return true;
  }

  /**
   * RFC 5322 3.4 angle-addr = [CFWS] "<" addr-spec ">" [CFWS] / obs-angle-addr, where
   * obs-angle-addr puts an obs-route before the addr-spec. "<>" is RFC 5321's null reverse-path.
   * A missing ">" is tolerated, as Python does.
   */
  angleAddr(): AddrSpec | "<>" | null {
    this.pos++;
    if (this.peek() === END) return null;
    if (this.peek() === GT) {
      // Python takes no trailing CFWS after "<>", so neither do we.
      this.pos++;
      return "<>";
    }
    const start = this.pos;
    let spec = this.addrSpec();
    if (spec === null) {
      this.pos = start;
      if (!this.obsRoute()) return null;
      spec = this.addrSpec();
      if (spec === null) return null;
    }
    if (this.peek() === GT) this.pos++;
    this.skipCfws();
    return spec;
  }

  private charAt(index: number): number {
    return index < this.text.length ? this.text.charCodeAt(index) : END;
  }
}

/** Whether an item keeps the CFWS next to it (as one space) rather than absorbing it. */
function isGlued(kind: number): boolean {
  return kind === WORD || kind === BACKSLASH_ITEM;
}

/**
 * Python's addr_spec quoting: a local part is quoted when it holds a special other than "." or
 * whitespace. An empty local part is quoted too (""@example.com), which Python only does inside
 * angle brackets; without them it would return the nonsensical "@example.com".
 */
function quoteLocalPart(local: string): string {
  if (local !== "" && !/[()<>@,:;\\"[\] \t]/.test(local)) return local;
  return `"${local.replace(/[\\"]/g, "\\$&")}"`;
}

/**
 * Characters never allowed in the consumed address text: C0 controls other than HTAB (CR/LF/NUL
 * smuggling), DEL, C1 controls, and Unicode spaces that Python's parser folds in some positions and
 * keeps in others. Non-ASCII at all unless SMTPUTF8 is enabled.
 */
function hasForbiddenCharacter(text: string, end: number, smtpUtf8: boolean): boolean {
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) {
      if ((c < 0x20 && c !== TAB) || c === 0x7f) return true;
    } else if (!smtpUtf8 || c <= 0x9f || isUnicodeSpace(c)) {
      return true;
    }
  }
  return false;
}

function isUnicodeSpace(c: number): boolean {
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * aiosmtpd _strip_command_keyword: the text after "FROM:"/"TO:" (ASCII case-insensitive), with
 * surrounding spaces and tabs trimmed, or null when the keyword is missing.
 */
export function stripKeyword(arg: string, keyword: "FROM:" | "TO:"): string | null {
  if (arg.length < keyword.length) return null;
  for (let i = 0; i < keyword.length; i++) {
    let c = arg.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== keyword.charCodeAt(i)) return null;
  }
  return trimWsp(arg.slice(keyword.length));
}

/**
 * aiosmtpd _getaddr: parse the path at the start of `text` (angle-addr when it starts with "<",
 * else a bare addr-spec) and return its addr-spec plus the remaining parameter text.
 */
export function parsePath(text: string, options: PathOptions): PathResult {
  const input = trimWsp(text);
  if (input === "") return { ok: true, address: "", rest: "" };
  const scanner = new PathScanner(input);
  const spec = input.charCodeAt(0) === LT ? scanner.angleAddr() : scanner.addrSpec();
  if (spec === null || hasForbiddenCharacter(input, scanner.pos, options.smtpUtf8)) {
    return MALFORMED;
  }
  const rest = trimWsp(input.slice(scanner.pos));
  if (spec === "<>") return { ok: true, address: spec, rest };
  const local = quoteLocalPart(spec.local);
  // A tab may fold between tokens but must not end up inside the address (quoted strings keep it).
  if (local.includes("\t")) return MALFORMED;
  // Unlike aiosmtpd (whose rpartition("@") sees no local part there), the limit also covers a
  // domainless path, which is all local part.
  if (options.localPartLimit > 0 && local.length > options.localPartLimit) {
    if (codePointLength(local) > options.localPartLimit) return MALFORMED;
  }
  const address = spec.domain === null ? local : `${local}@${spec.domain}`;
  return { ok: true, address, rest };
}

/**
 * aiosmtpd smtp_VRFY: the argument is parsed like a path and anything after it is ignored.
 * Returns null when it cannot be parsed ("" for empty text, which the caller answers with 501).
 */
export function parseVrfyArgument(text: string, options: PathOptions): string | null {
  const result = parsePath(text, options);
  return result.ok ? result.address : null;
}
