import { useState, type FormEvent } from "react";
import { useMutation } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import {
  AddTeamMemberDocument,
  RemoveTeamMemberDocument,
  type TeamMembersQuery,
  type TeamRole,
  UpdateTeamMemberDocument,
} from "../gql/graphql";
import { formatTime } from "../connections/format";

type Member = NonNullable<TeamMembersQuery["team"]>["members"][number];
type Props = { teamId: string; members: Member[]; isAdmin: boolean; viewerId: string | null; onChanged: () => void };

const ROLES: TeamRole[] = ["ADMIN", "MEMBER", "MONITORING"];

export function Members({ teamId, members, isAdmin, viewerId, onChanged }: Props) {
  const [, update] = useMutation(UpdateTeamMemberDocument);
  const [, remove] = useMutation(RemoveTeamMemberDocument);
  const [problem, setProblem] = useState<string | null>(null);

  const changeRole = async (userId: string, role: TeamRole) => {
    const { error } = await update({ teamId, userId, role });
    setProblem(error ? errorMessage(error) : null);
    onChanged();
  };
  const removeMember = async (userId: string) => {
    const { error } = await remove({ teamId, userId });
    setProblem(error ? errorMessage(error) : null);
    onChanged();
  };

  return (
    <div className="panel">
      <h3>Members</h3>
      <ErrorText message={problem} />
      <table className="connections">
        <thead>
          <tr>
            <th>E-mail</th>
            <th>Role</th>
            <th>Member since</th>
            {isAdmin && <th>Actions</th>}
          </tr>
        </thead>
        <tbody>
          {members.map((member) => (
            <tr key={member.userId} aria-label={member.email}>
              <td>
                {member.email}
                {member.userId === viewerId && <span className="muted"> (you)</span>}
              </td>
              <td>
                {isAdmin ? (
                  <select
                    aria-label={`Role of ${member.email}`}
                    value={member.role}
                    onChange={(e) => changeRole(member.userId, e.target.value as TeamRole)}
                  >
                    {ROLES.map((role) => (
                      <option key={role}>{role}</option>
                    ))}
                  </select>
                ) : (
                  member.role
                )}
              </td>
              <td>{formatTime(member.since)}</td>
              {isAdmin && (
                <td>
                  <button type="button" onClick={() => removeMember(member.userId)}>
                    Remove
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {isAdmin && <AddMember teamId={teamId} onAdded={onChanged} />}
    </div>
  );
}

function AddMember({ teamId, onAdded }: { teamId: string; onAdded: () => void }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<TeamRole>("MEMBER");
  const [{ fetching }, add] = useMutation(AddTeamMemberDocument);
  const [problem, setProblem] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { error } = await add({ teamId, email, role });
    if (error) return setProblem(errorMessage(error));
    setProblem(null);
    setEmail("");
    onAdded();
  };

  return (
    <form aria-label="Add member" onSubmit={submit} className="filters">
      <label>
        E-mail
        <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value as TeamRole)}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={fetching}>
        Add member
      </button>
      <ErrorText message={problem} />
    </form>
  );
}
