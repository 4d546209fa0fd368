import { useState } from "react";
import { useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { ViewerDocument } from "../gql/graphql";
import { TeamConnections } from "./TeamConnections";

/** The caller's teams; the connections of the one chosen (the first, unless there are several). */
export function ConnectionsPage() {
  const [{ data, error }] = useQuery({ query: ViewerDocument });
  const [chosen, setChosen] = useState<string | null>(null);

  if (error) return <ErrorText message={errorMessage(error)} />;
  if (!data) return <p>Loading...</p>;
  const teams = data.viewer.teams;
  if (teams.length === 0) return <p>This token belongs to no team.</p>;
  const teamId = chosen ?? teams[0].id;

  return (
    <>
      {teams.length > 1 && (
        <label className="team">
          Team
          <select value={teamId} onChange={(e) => setChosen(e.target.value)}>
            {teams.map((team) => (
              <option key={team.id} value={team.id}>
                {team.name}
              </option>
            ))}
          </select>
        </label>
      )}
      <TeamConnections key={teamId} teamId={teamId} />
    </>
  );
}
