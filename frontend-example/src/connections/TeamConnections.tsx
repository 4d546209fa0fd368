import { useCallback, useState } from "react";
import { useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { AppsDocument, ConnectionsDocument } from "../gql/graphql";
import { ConnectionTable } from "./ConnectionTable";
import { CreateConnection } from "./CreateConnection";
import { EditConnection } from "./EditConnection";
import { Filters, type ListFilters } from "./Filters";
import { useTeamEvents } from "./useTeamEvents";

type Panel = { kind: "create" } | { kind: "edit"; connectionId: string } | null;

/** One team's connections: filters, the live list, and the create or edit panel. */
export function TeamConnections({ teamId }: { teamId: string }) {
  const [filters, setFilters] = useState<ListFilters>({ app: "", status: "" });
  const [panel, setPanel] = useState<Panel>(null);
  const [{ data: catalog }] = useQuery({ query: AppsDocument, variables: {} });
  const [{ data, error }, reexecute] = useQuery({
    query: ConnectionsDocument,
    variables: { teamId, app: filters.app || null, status: filters.status || null },
  });
  const refresh = useCallback(() => reexecute({ requestPolicy: "network-only" }), [reexecute]);
  const { checks, liveError } = useTeamEvents(teamId, refresh);
  const apps = catalog?.apps ?? [];
  const connections = data?.team?.connections;
  const closePanel = () => setPanel(null);

  return (
    <section>
      <div className="toolbar">
        <Filters apps={apps} value={filters} onChange={setFilters} />
        <button type="button" onClick={() => setPanel({ kind: "create" })}>
          New connection
        </button>
      </div>
      {panel?.kind === "create" && <CreateConnection teamId={teamId} onSaved={refresh} onClose={closePanel} />}
      {panel?.kind === "edit" && (
        <EditConnection
          key={panel.connectionId}
          connectionId={panel.connectionId}
          onSaved={refresh}
          onClose={closePanel}
        />
      )}
      <ErrorText message={liveError} />
      {error && <ErrorText message={errorMessage(error)} />}
      {connections && (
        <ConnectionTable
          connections={connections.edges.map((edge) => edge.node)}
          totalCount={connections.totalCount}
          appNames={new Map(apps.map((app) => [app.key, app.name]))}
          checks={checks}
          onEdit={(connectionId) => setPanel({ kind: "edit", connectionId })}
          onChanged={refresh}
        />
      )}
    </section>
  );
}
