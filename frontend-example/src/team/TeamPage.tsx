import { useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { TeamMembersDocument } from "../gql/graphql";
import { Members } from "./Members";
import { MyTokens } from "./MyTokens";
import { ServiceTokens } from "./ServiceTokens";

/** A team's members and roles, its service tokens (for ADMINs), and the caller's own tokens. */
export function TeamPage({ teamId, viewerId }: { teamId: string; viewerId: string | null }) {
  const [{ data, error }, reexecute] = useQuery({ query: TeamMembersDocument, variables: { teamId } });
  if (error) return <ErrorText message={errorMessage(error)} />;
  const team = data?.team;
  if (!team) return <p>Loading...</p>;
  const isAdmin = team.role === "ADMIN";
  return (
    <section aria-label="Team">
      <h2>{team.name}</h2>
      <p className="muted">
        Your role: {team.role}.{" "}
        {isAdmin ? "You manage members and service tokens." : "Only an ADMIN manages members and service tokens."}
      </p>
      <Members
        teamId={teamId}
        members={team.members}
        isAdmin={isAdmin}
        viewerId={viewerId}
        onChanged={() => reexecute({ requestPolicy: "network-only" })}
      />
      {isAdmin && <ServiceTokens teamId={teamId} />}
      {viewerId && <MyTokens />}
    </section>
  );
}
