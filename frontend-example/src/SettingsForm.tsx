import { useState, type FormEvent } from "react";
import { DEFAULT_SERVER_URL, type Settings } from "./settings";

type Props = { initial: Settings | null; onSave: (settings: Settings) => void; onCancel?: () => void };

export function SettingsForm({ initial, onSave, onCancel }: Props) {
  const [serverUrl, setServerUrl] = useState(initial?.serverUrl ?? DEFAULT_SERVER_URL);
  const [token, setToken] = useState(initial?.token ?? "");

  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSave({ serverUrl: serverUrl.trim().replace(/\/+$/, ""), token: token.trim() });
  };

  return (
    <form className="panel" aria-label="Settings" onSubmit={submit}>
      <h2>Settings</h2>
      <label>
        Server URL
        <input type="url" required value={serverUrl} onChange={(e) => setServerUrl(e.target.value)} />
      </label>
      <label>
        Token
        <input type="password" required autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
      </label>
      <div className="actions">
        <button type="submit">Save settings</button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Close
          </button>
        )}
      </div>
    </form>
  );
}
