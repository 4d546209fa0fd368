import type { ConnectionSummaryFragment } from "../gql/graphql";
import { DeleteButton } from "./DeleteButton";
import { OUTCOME_LABELS, formatTime } from "./format";
import { ReauthorizeButton } from "./ReauthorizeButton";
import { StatusBadge } from "./StatusBadge";
import type { Check } from "./useTeamEvents";
import { VerifyButton } from "./VerifyButton";

type Props = {
  connection: ConnectionSummaryFragment;
  appName: string;
  check: Check | undefined;
  onEdit: () => void;
  onChanged: () => void;
};

export function ConnectionRow({ connection, appName, check, onEdit, onChanged }: Props) {
  const last = connection.lastVerification;
  return (
    <tr aria-label={connection.name}>
      <td>{appName}</td>
      <td>
        {connection.name}
        {connection.accountLabel && <div className="muted">{connection.accountLabel}</div>}
        {connection.scopes.length > 0 && (
          <div className="scopes" aria-label="Scopes">
            {connection.scopes.map((scope) => (
              <code key={scope}>{scope}</code>
            ))}
          </div>
        )}
      </td>
      <td>
        <StatusBadge status={connection.status} />
      </td>
      <td>
        {last ? (
          <>
            <div>
              {formatTime(last.finishedAt)} · {OUTCOME_LABELS[last.outcome]}
            </div>
            {last.message && <div className="muted">{last.message}</div>}
          </>
        ) : (
          <span className="muted">never</span>
        )}
      </td>
      <td>{connection.expiresAt ? formatTime(connection.expiresAt) : <span className="muted">—</span>}</td>
      <td>
        <UsedBy usages={connection.usedBy} />
      </td>
      <td>
        <div className="actions">
          <VerifyButton connectionId={connection.id} check={check} onChanged={onChanged} />
          <button type="button" onClick={onEdit}>
            Edit
          </button>
          {connection.authType === "OAUTH2" && <ReauthorizeButton connectionId={connection.id} onChanged={onChanged} />}
          <DeleteButton connectionId={connection.id} onDeleted={onChanged} />
        </div>
      </td>
    </tr>
  );
}

/** The flows whose modules use the connection, and a warning for each module lacking scopes. */
function UsedBy({ usages }: { usages: ConnectionSummaryFragment["usedBy"] }) {
  if (usages.length === 0) return <span className="muted">no flows</span>;
  return (
    <ul className="usages">
      {usages.map((usage) => (
        <li key={`${usage.flow.id} ${usage.moduleKey}`}>
          {usage.flow.name} <span className="muted">· {usage.moduleKey}</span>
          {usage.missingScopes.length > 0 && (
            <div className="warning" role="note">
              ⚠ misses {usage.missingScopes.join(", ")}
            </div>
          )}
        </li>
      ))}
    </ul>
  );
}
