/** Where the page finds its server and who it is there, kept in localStorage between visits. */
export type Settings = { serverUrl: string; token: string };

const KEY = "plugboard.settings";

export const DEFAULT_SERVER_URL = "http://127.0.0.1:8080";

export function loadSettings(): Settings | null {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? "null") as Partial<Settings> | null;
    return saved?.token ? { serverUrl: saved.serverUrl || DEFAULT_SERVER_URL, token: saved.token } : null;
  } catch {
    return null;
  }
}

export function saveSettings(settings: Settings) {
  localStorage.setItem(KEY, JSON.stringify(settings));
}
