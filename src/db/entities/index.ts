import { AuditLog } from './audit-log.entity.ts';
import { Customer } from './customer.entity.ts';
import { CustomerInteraction } from './interaction.entity.ts';
import { LinkToken } from './link-token.entity.ts';
import { Location, UserLocation } from './location.entity.ts';
import { MfaFactor } from './mfa-factor.entity.ts';
import { OAuthClient } from './oauth-client.entity.ts';
import { OidcArtifact } from './oidc-artifact.entity.ts';
import { Organization } from './organization.entity.ts';
import { OutboxMessage } from './outbox-message.entity.ts';
import { Permission } from './permission.entity.ts';
import { RecoveryCode } from './recovery-code.entity.ts';
import { Role } from './role.entity.ts';
import { ServerSecret } from './server-secret.entity.ts';
import { SigningKey } from './signing-key.entity.ts';
import { User } from './user.entity.ts';

export const ENTITIES = [Organization, Permission, Role, User, OAuthClient, OidcArtifact, SigningKey, ServerSecret, AuditLog, Location, UserLocation, Customer, CustomerInteraction, OutboxMessage, LinkToken, MfaFactor, RecoveryCode];
