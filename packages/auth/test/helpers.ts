import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type { SaslContext } from "@smtpkit/core";

export const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
export const dec = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
export const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");
export const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));

export const CLEAR: SaslContext = { hostname: "mx.example.com", tls: null };

export function tlsContext(overrides: Partial<NonNullable<SaslContext["tls"]>> = {}): SaslContext {
  return {
    hostname: "mx.example.com",
    tls: {
      peerCertificate: null,
      authorized: false,
      exportKeyingMaterial: (length: number) => new Uint8Array(length).fill(7),
      serverCertificate: null,
      ...overrides,
    },
  };
}

type Hash = "SHA-1" | "SHA-256";
const nodeHash = (hash: Hash): string => (hash === "SHA-1" ? "sha1" : "sha256");

/** A minimal SCRAM client (node:crypto) for driving the server mechanism in tests. */
export class ScramClient {
  readonly nonce: string;
  private clientFirstBare = "";
  private serverSignature = "";
  constructor(
    readonly hash: Hash,
    readonly user: string,
    readonly password: string,
    readonly options: {
      gs2?: string;
      cbData?: Uint8Array;
      nonce?: string;
      tamperProof?: boolean;
      tamperNonce?: boolean;
      tamperBinding?: boolean;
    } = {},
  ) {
    this.nonce = options.nonce ?? randomBytes(12).toString("base64");
  }
  get gs2(): string {
    return this.options.gs2 ?? "n,,";
  }
  first(): Uint8Array {
    const name = this.user.replaceAll("=", "=3D").replaceAll(",", "=2C");
    this.clientFirstBare = `n=${name},r=${this.nonce}`;
    return enc(`${this.gs2}${this.clientFirstBare}`);
  }
  final(serverFirst: Uint8Array): Uint8Array {
    const text = dec(serverFirst);
    const attrs = Object.fromEntries(text.split(",").map((a) => [a[0], a.slice(2)]));
    const r = this.options.tamperNonce ? `${attrs.r}x` : (attrs.r as string);
    const salt = Buffer.from(attrs.s as string, "base64");
    const iterations = Number(attrs.i);
    const h = nodeHash(this.hash);
    const salted = pbkdf2Sync(this.password, salt, iterations, this.hash === "SHA-1" ? 20 : 32, h);
    const clientKey = createHmac(h, salted).update("Client Key").digest();
    const storedKey = createHash(h).update(clientKey).digest();
    const serverKey = createHmac(h, salted).update("Server Key").digest();
    let cbind = Buffer.concat([Buffer.from(this.gs2), Buffer.from(this.options.cbData ?? [])]);
    if (this.options.tamperBinding) cbind = Buffer.concat([cbind, Buffer.from("x")]);
    const withoutProof = `c=${cbind.toString("base64")},r=${r}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const signature = createHmac(h, storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++)
      proof[i] = (clientKey[i] as number) ^ (signature[i] as number);
    if (this.options.tamperProof) proof[0] = (proof[0] as number) ^ 1;
    this.serverSignature = createHmac(h, serverKey).update(authMessage).digest("base64");
    return enc(`${withoutProof},p=${proof.toString("base64")}`);
  }
  verifyServer(serverFinal: Uint8Array): boolean {
    return dec(serverFinal) === `v=${this.serverSignature}`;
  }
}
