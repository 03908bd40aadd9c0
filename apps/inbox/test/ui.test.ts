import { existsSync, mkdirSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, inboxForEachTest, transport } from "./served.js";

const CHROMIUM = "/usr/bin/chromium";
const found = existsSync(CHROMIUM);
// Outside CI a missing browser skips these tests; in CI (.ci/run installs chromium) it fails them.
const run = found || process.env.CI === "true";
const artifacts = new URL("../test-artifacts/", import.meta.url);

describe.runIf(run)(
  `the web UI in Chromium${found ? "" : " [skip: chromium not installed]"}`,
  () => {
    const served = inboxForEachTest();
    let browser: Browser;
    beforeAll(async () => {
      mkdirSync(artifacts, { recursive: true });
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    });
    afterAll(async () => {
      await browser?.close();
    });

    /** A page, with the URLs it got a response from and the requests the browser blocked. */
    async function open(): Promise<{
      page: Page;
      requests: string[];
      blocked: string[];
      dialogs: string[];
    }> {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const requests: string[] = [];
      const blocked: string[] = [];
      const dialogs: string[] = [];
      page.on("response", (response) => requests.push(response.url()));
      page.on("requestfailed", (request) =>
        blocked.push(`${request.failure()?.errorText} ${request.url()}`),
      );
      page.on("dialog", (dialog) => {
        dialogs.push(dialog.message());
        void dialog.accept();
      });
      await page.goto(served.inbox.httpUrl);
      await page.locator("#live.on").waitFor();
      return { page, requests, blocked, dialogs };
    }

    const screenshot = (page: Page, name: string) =>
      page.screenshot({ path: new URL(`${name}.png`, artifacts).pathname });

    it("shows a message live, its HTML without running its scripts or loading remote images", async () => {
      const { page, requests, blocked } = await open();
      await transport(served.inbox).sendMail({
        from: '"Alice" <alice@example.com>',
        to: "bob@example.com",
        subject: "Browser test",
        text: "The text part",
        html: [
          '<p id="greeting">Hello from HTML</p>',
          '<img id="tracker" src="http://127.0.0.1:9/remote.png" alt="remote">',
          "<script>document.title = 'pwned'; document.body.textContent = 'PWNED'; parent.document.title = 'pwned';</script>",
        ].join(""),
        attachments: [{ filename: "report.csv", content: "a,b\n1,2\n" }],
      });
      // Live: the list updates from the event stream, without a reload.
      const item = page.locator("#messages li", { hasText: "Browser test" });
      await item.waitFor({ timeout: 10_000 });
      await screenshot(page, "list");
      await item.click();
      await expect.poll(() => page.locator("#view-subject").textContent()).toBe("Browser test");

      const frame = page.frameLocator("#html-frame");
      await frame.locator("#greeting").waitFor();
      expect(await frame.locator("#greeting").textContent()).toBe("Hello from HTML");
      // The script did not run: the HTML is as sent, and neither title changed.
      // biome-ignore lint/performance/useDomNodeTextContent: the rendered text, without the script's source
      expect(await frame.locator("body").innerText()).not.toContain("PWNED");
      expect(await frame.locator("#tracker").count()).toBe(1);
      expect(await frame.locator("title").count()).toBe(0);
      expect(await page.title()).toBe("smtpkit inbox");
      const sandbox = await page.locator("#html-frame").getAttribute("sandbox");
      expect(sandbox).not.toContain("allow-scripts");
      expect(sandbox).not.toContain("allow-same-origin");
      // The remote image was never fetched: the HTML part's CSP blocked it.
      expect(requests.filter((url) => url.includes("remote.png"))).toEqual([]);
      await expect.poll(() => blocked).toContain("csp http://127.0.0.1:9/remote.png");
      await screenshot(page, "message-html");

      await page.getByRole("tab", { name: "Text" }).click();
      expect(await page.locator("#panel-text").textContent()).toContain("The text part");
      await page.getByRole("tab", { name: "Headers" }).click();
      await page.locator("#panel-headers td", { hasText: "Subject" }).first().waitFor();
      await page.getByRole("tab", { name: "Raw" }).click();
      await expect
        .poll(() => page.locator("#panel-raw").textContent())
        .toContain("Subject: Browser test");
      await page.getByRole("tab", { name: "Attachments" }).click();
      expect(await page.locator("#panel-attachments a").textContent()).toBe("report.csv");
      await screenshot(page, "message-attachments");
      await page.close();
    });

    it("remote images load only when asked", async () => {
      const { page, requests, blocked } = await open();
      await transport(served.inbox).sendMail({
        from: "alice@example.com",
        to: "bob@example.com",
        subject: "Images",
        html: `<p>pic</p><img src="${served.inbox.httpUrl}/ui/remote-probe.png">`,
      });
      await page.locator("#messages li", { hasText: "Images" }).click();
      await page.frameLocator("#html-frame").locator("p").waitFor();
      await expect
        .poll(() => blocked.filter((entry) => entry.includes("remote-probe.png")))
        .toHaveLength(1);
      expect(requests.filter((url) => url.includes("remote-probe.png"))).toEqual([]);
      await page.locator("#remote-images").click();
      await expect
        .poll(() => requests.filter((url) => url.includes("remote-probe.png")).length)
        .toBeGreaterThan(0);
      await page.close();
    });

    it("searches and deletes", async () => {
      for (const subject of ["Invoice 1", "Welcome aboard", "Invoice 2"])
        await transport(served.inbox).sendMail({
          from: "alice@example.com",
          to: "bob@example.com",
          subject,
          text: subject,
        });
      const { page } = await open();
      await expect.poll(() => page.locator("#messages li").count()).toBe(3);
      await page.locator("#search").fill("subject:invoice");
      await page.locator("#search").press("Enter");
      await expect
        .poll(() => page.locator("#messages li .subject").allTextContents())
        .toEqual(["Invoice 2", "Invoice 1"]);
      await screenshot(page, "search");
      await page.locator("#messages li", { hasText: "Invoice 2" }).click();
      await expect.poll(() => page.locator("#view-subject").textContent()).toBe("Invoice 2");
      await page.locator("#delete").click();
      await expect
        .poll(() => page.locator("#messages li .subject").allTextContents())
        .toEqual(["Invoice 1"]);
      const listing = await api<{ total: number }>(served.inbox, "/api/v1/messages");
      expect(listing.body.total).toBe(2);
      await page.locator("#delete-all").click();
      await expect
        .poll(
          async () => (await api<{ total: number }>(served.inbox, "/api/v1/messages")).body.total,
        )
        .toBe(0);
      await page.close();
    });

    it("lists the fault rules and updates when they change", async () => {
      const { page } = await open();
      await api(served.inbox, "/api/v1/faults", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          stage: "RCPT",
          recipient: "x@example.com",
          reply: "550 5.1.1 No such user",
        }),
      });
      await expect
        .poll(() => page.locator("#faults li").allTextContents())
        .toEqual([
          expect.stringContaining(
            "at RCPT for x@example.com, after 0: reply 550 5.1.1 No such user",
          ),
        ]);
      await screenshot(page, "faults");
      await page.locator("#clear-faults").click();
      await expect.poll(() => page.locator("#faults li").count()).toBe(0);
      await page.close();
    });
  },
);
