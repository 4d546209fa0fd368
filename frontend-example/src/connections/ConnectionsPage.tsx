import { useState } from "react";
import { useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { ViewerDocument } from "../gql/graphql";
import { TeamPage } from "../team/TeamPage";
import { TeamConnections } from "./TeamConnections";

type View = "connections" | "team";

/** The caller's teams; for the one chosen (the first, unless there are several), its connections or its Team page. */
export function ConnectionsPage() {
  const [{ data, error }] = useQuery({ query: ViewerDocument });
  const [chosen, setChosen] = useState<string | null>(null);
  const [view, setView] = useState<View>("connections");

  if (error) return <ErrorText message={errorMessage(error)} />;
  if (!data) return <p>Loading...</p>;
  const teams = data.viewer.teams;
  if (teams.length === 0) return <p>This token belongs to no team.</p>;
  const team = teams.find((t) => t.id === chosen) ?? teams[0];

  return (
    <>
      <div className="toolbar">
        <nav className="tabs" aria-label="Views">
          <button type="button" aria-current={view === "connections" ? "page" : undefined} onClick={() => setView("connections")}>
            Connections
          </button>
          <button type="button" aria-current={view === "team" ? "page" : undefined} onClick={() => setView("team")}>
            Team
          </button>
        </nav>
        {teams.length > 1 && (
          <label className="team">
            Team
            <select value={team.id} onChange={(e) => setChosen(e.target.value)}>
              {teams.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      {view === "connections" ? (
        <TeamConnections key={team.id} teamId={team.id} />
      ) : (
        <TeamPage key={team.id} teamId={team.id} viewerId={data.viewer.userId ?? null} />
      )}
    </>
  );
}
