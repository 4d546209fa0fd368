import { useState } from "react";
import { useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { AppsDocument } from "../gql/graphql";

const SHOWN = 12;

/** Searches the app catalog and reports the app picked. */
export function AppPicker({ onPick }: { onPick: (appKey: string) => void }) {
  const [search, setSearch] = useState("");
  const [{ data, error }] = useQuery({ query: AppsDocument, variables: { search } });
  const apps = data?.apps ?? [];

  return (
    <div className="app-picker">
      <label>
        Search apps
        <input type="search" autoFocus value={search} onChange={(e) => setSearch(e.target.value)} />
      </label>
      {error && <ErrorText message={errorMessage(error)} />}
      <ul>
        {apps.slice(0, SHOWN).map((app) => (
          <li key={app.key}>
            <button type="button" onClick={() => onPick(app.key)}>
              {app.name}
            </button>
            <span className="muted">{app.description}</span>
          </li>
        ))}
      </ul>
      {apps.length > SHOWN && <p className="muted">{apps.length - SHOWN} more; refine the search.</p>}
    </div>
  );
}
