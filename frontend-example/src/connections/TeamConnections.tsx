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

/** Connections per page; the server pages with cursors. */
export const PAGE_SIZE = 10;

/** One team's connections: filters, the live list, and the create or edit panel. */
export function TeamConnections({ teamId }: { teamId: string }) {
  const [filters, setFiltersState] = useState<ListFilters>({ app: "", status: "" });
  // The cursors of the pages before this one: the last is this page's `after`.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [panel, setPanel] = useState<Panel>(null);
  const [{ data: catalog }] = useQuery({ query: AppsDocument, variables: {} });
  const [{ data, error }, reexecute] = useQuery({
    query: ConnectionsDocument,
    variables: {
      teamId,
      app: filters.app || null,
      status: filters.status || null,
      first: PAGE_SIZE,
      after: cursors[cursors.length - 1],
    },
  });
  const setFilters = (next: ListFilters) => {
    setFiltersState(next);
    setCursors([null]);
  };
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
          offset={(cursors.length - 1) * PAGE_SIZE}
          onPrevious={cursors.length > 1 ? () => setCursors(cursors.slice(0, -1)) : undefined}
          onNext={
            connections.pageInfo.hasNextPage && connections.pageInfo.endCursor
              ? () => setCursors([...cursors, connections.pageInfo.endCursor ?? null])
              : undefined
          }
          appNames={new Map(apps.map((app) => [app.key, app.name]))}
          checks={checks}
          onEdit={(connectionId) => setPanel({ kind: "edit", connectionId })}
          onChanged={refresh}
        />
      )}
    </section>
  );
}
