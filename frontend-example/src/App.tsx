import { useEffect, useState } from "react";
import { Provider } from "urql";
import { createApiClient, type ApiClient } from "./client";
import { ConnectionsPage } from "./connections/ConnectionsPage";
import { SettingsForm } from "./SettingsForm";
import { loadSettings, saveSettings, type Settings } from "./settings";

export function App() {
  const [settings, setSettings] = useState<Settings | null>(loadSettings);
  const [editingSettings, setEditingSettings] = useState(settings === null);
  const [api, setApi] = useState<ApiClient | null>(null);
  useEffect(() => {
    if (!settings) return;
    const created = createApiClient(settings);
    setApi(created);
    return created.dispose;
  }, [settings]);

  const save = (next: Settings) => {
    saveSettings(next);
    setSettings(next);
    setEditingSettings(false);
  };

  return (
    <main>
      <header>
        <h1>Connections</h1>
        {settings && !editingSettings && (
          <button type="button" onClick={() => setEditingSettings(true)}>
            Settings
          </button>
        )}
      </header>
      {editingSettings && (
        <SettingsForm
          initial={settings}
          onSave={save}
          onCancel={settings ? () => setEditingSettings(false) : undefined}
        />
      )}
      {api && (
        <Provider value={api.client}>
          {/* A new server or token starts the page afresh. */}
          <ConnectionsPage key={`${api.settings.serverUrl} ${api.settings.token}`} />
        </Provider>
      )}
    </main>
  );
}
