/**
 * Changes that may need a person's OAuth consent (create, edit, reauthorize). The popup is
 * opened inside the click, before the API answers, so popup blockers let it through; it is then
 * sent to the `authorizationUrl`. The server's callback page posts
 * `{type: "plugboard:oauth", outcome, connectionId, message}` to this window and closes itself.
 */
import type { CombinedError } from "urql";

/** How a change ended: the API refused it, the consent failed, or (both empty) it is done. */
export type ChangeOutcome = { apiError?: CombinedError; consentError?: string };

type Answer = { error?: CombinedError; authorizationUrl?: string | null };

const POPUP_BLOCKED = "The browser blocked the consent window; allow popups for this page and try again.";
const POPUP_CLOSED = "The consent window was closed before it finished.";
const POPUP_CLOSED_GRACE_MS = 1000;

export async function changeWithConsent(expectConsent: boolean, change: () => Promise<Answer>): Promise<ChangeOutcome> {
  let popup = expectConsent ? openConsentWindow() : null;
  const { error, authorizationUrl } = await change();
  if (error || !authorizationUrl) {
    popup?.close();
    return { apiError: error };
  }
  popup ??= openConsentWindow();
  if (!popup) return { consentError: POPUP_BLOCKED };
  const result = await consent(popup, authorizationUrl);
  return result.outcome === "success" ? {} : { consentError: result.message || "Consent was not granted." };
}

function openConsentWindow(): Window | null {
  return window.open("about:blank", "plugboard-consent", "popup,width=560,height=720");
}

function consent(popup: Window, authorizationUrl: string): Promise<{ outcome: string; message?: string }> {
  popup.location.href = authorizationUrl;
  return new Promise((resolve) => {
    const finish = (result: { outcome: string; message?: string }) => {
      window.removeEventListener("message", onMessage);
      clearInterval(watch);
      resolve(result);
    };
    const onMessage = (event: MessageEvent) => {
      // Only the window this page opened speaks for the consent.
      if (event.source === popup && event.data?.type === "plugboard:oauth") finish(event.data);
    };
    // A window closed by hand never reports; the grace lets a last message arrive first.
    const watch = setInterval(() => {
      if (!popup.closed) return;
      clearInterval(watch);
      setTimeout(() => finish({ outcome: "error", message: POPUP_CLOSED }), POPUP_CLOSED_GRACE_MS);
    }, 300);
    window.addEventListener("message", onMessage);
  });
}
