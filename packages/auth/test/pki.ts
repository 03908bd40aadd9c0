import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Pki {
  readonly dir: string;
  readonly caPath: string;
  readonly ca: string;
  readonly serverKey: string;
  readonly serverCert: string;
  /** Client certificate CN=frank signed by the CA, and its key (paths). */
  readonly clientCertPath: string;
  readonly clientKeyPath: string;
  /** Client certificate CN=frank from another, untrusted CA (paths). */
  readonly rogueCertPath: string;
  readonly rogueKeyPath: string;
  cleanup(): void;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A throwaway CA, a server certificate for localhost/127.0.0.1 and client certificates (openssl). */
export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), "smtpkit-auth-pki-"));
  const p = (name: string) => join(dir, name);
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  writeFileSync(
    p("ext.cnf"),
    "[server]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n[client]\nextendedKeyUsage=clientAuth\n",
  );
  const ca = (name: string) =>
    run([
      "req",
      "-x509",
      ...EC,
      "-keyout",
      p(`${name}.key`),
      "-out",
      p(`${name}.pem`),
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
    ]);
  const leaf = (name: string, cn: string, issuer: string, ext: string) => {
    run([
      "req",
      ...EC,
      "-keyout",
      p(`${name}.key`),
      "-out",
      p(`${name}.csr`),
      "-subj",
      `/CN=${cn}`,
    ]);
    run([
      "x509",
      "-req",
      "-in",
      p(`${name}.csr`),
      "-CA",
      p(`${issuer}.pem`),
      "-CAkey",
      p(`${issuer}.key`),
      "-CAcreateserial",
      "-out",
      p(`${name}.pem`),
      "-days",
      "2",
      "-extfile",
      p("ext.cnf"),
      "-extensions",
      ext,
    ]);
  };
  ca("ca");
  ca("rogue-ca");
  leaf("server", "localhost", "ca", "server");
  leaf("client", "frank", "ca", "client");
  leaf("rogue", "frank", "rogue-ca", "client");
  return {
    dir,
    caPath: p("ca.pem"),
    ca: readFileSync(p("ca.pem"), "utf8"),
    serverKey: readFileSync(p("server.key"), "utf8"),
    serverCert: readFileSync(p("server.pem"), "utf8"),
    clientCertPath: p("client.pem"),
    clientKeyPath: p("client.key"),
    rogueCertPath: p("rogue.pem"),
    rogueKeyPath: p("rogue.key"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
