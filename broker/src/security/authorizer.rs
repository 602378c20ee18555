//! The ACL decision, as Kafka's `StandardAuthorizer` makes it:
//!
//! 1. A super user (`super.users`) may do anything.
//! 2. Among the ACLs whose pattern covers the resource (literal name, the
//!    `*` wildcard, or a prefix), a DENY for this principal (or `User:*`),
//!    host and operation (or ALL) wins.
//! 3. Otherwise an ALLOW decides; an ALLOW of READ, WRITE, DELETE or ALTER
//!    also allows DESCRIBE, one of ALTER_CONFIGS also DESCRIBE_CONFIGS
//!    (DENY ACLs imply nothing).
//! 4. With no ACL on the resource at all, `allow.everyone.if.no.acl.found`
//!    decides; with ACLs on it but none for this request, it is denied.

use super::KafkaPrincipal;
use super::acl::{AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType, WILDCARD, WILDCARD_PRINCIPAL};

/// What a request wants to do to which resource.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    pub operation: AclOperation,
    pub resource_type: ResourceType,
    pub resource_name: &'a str,
}

/// The authorizer's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: `User:admin;User:ops`.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// Whether `principal` connecting from `host` may take `action`, given `acls`.
pub fn authorize<'a>(
    config: &AuthorizerConfig,
    acls: impl IntoIterator<Item = &'a AclBinding>,
    principal: &KafkaPrincipal,
    host: &str,
    action: Action<'_>,
) -> bool {
    let who = principal.to_string();
    if config.super_users.contains(&who) {
        return true;
    }
    let mut has_resource_acls = false;
    let mut allowed = false;
    for acl in acls {
        if !covers(acl, action) {
            continue;
        }
        has_resource_acls = true;
        match decides(acl, &who, host, action.operation) {
            Some(AclPermissionType::Deny) => return false,
            Some(AclPermissionType::Allow) => allowed = true,
            _ => {}
        }
    }
    allowed || (!has_resource_acls && config.allow_if_no_acl)
}

/// Kafka's `authorizeByResourceType`, simplified: whether `principal` may
/// take `operation` on some resource of `resource_type` (an idempotent
/// producer needs WRITE on some topic, or IDEMPOTENT_WRITE on the
/// cluster). True for a super user, for an ALLOW of the operation (or
/// ALL) that applies to the principal and host, and, when no ACL names
/// the type at all, by `allow.everyone.if.no.acl.found`. Unlike Kafka it
/// does not look for DENY ACLs covering every such resource.
pub fn authorize_any<'a>(
    config: &AuthorizerConfig,
    acls: impl IntoIterator<Item = &'a AclBinding>,
    principal: &KafkaPrincipal,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
) -> bool {
    let who = principal.to_string();
    if config.super_users.contains(&who) {
        return true;
    }
    let mut any_of_type = false;
    for acl in acls.into_iter().filter(|a| a.resource_type == resource_type) {
        any_of_type = true;
        if acl.permission == AclPermissionType::Allow
            && (acl.operation == operation || acl.operation == AclOperation::All)
            && decides(acl, &who, host, operation).is_some()
        {
            return true;
        }
    }
    !any_of_type && config.allow_if_no_acl
}

/// Kafka's `AclEntry.supportedOperations`: the operations an
/// `authorized_operations` field reports on for each resource type (none
/// for ANY, which names no resource).
pub fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource_type {
        ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe],
        ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Any => &[],
    }
}

/// Kafka's `AuthHelper.authorizedOperations`: the supported operations
/// `principal` may take on the resource as `Utils.to32BitField` packs them
/// (bit `code` set for each). Without an authorizer (`config` is `None`)
/// every supported operation counts.
pub fn authorized_operations(
    config: Option<&AuthorizerConfig>,
    acls: &std::collections::BTreeSet<AclBinding>,
    principal: &KafkaPrincipal,
    host: &str,
    resource_type: ResourceType,
    resource_name: &str,
) -> i32 {
    supported_operations(resource_type)
        .iter()
        .filter(|&&operation| {
            config.is_none_or(|c| authorize(c, acls, principal, host, Action { operation, resource_type, resource_name }))
        })
        .fold(0, |bits, op| bits | 1 << op.code())
}

/// Whether `acl`'s resource pattern covers the action's resource.
fn covers(acl: &AclBinding, action: Action<'_>) -> bool {
    acl.resource_type == action.resource_type
        && match acl.pattern_type {
            PatternType::Literal => acl.resource_name == action.resource_name || acl.resource_name == WILDCARD,
            PatternType::Prefixed => action.resource_name.starts_with(&acl.resource_name),
            _ => false,
        }
}

/// Kafka's `findResult`: the ACL's verdict on this request, if it applies.
fn decides(acl: &AclBinding, who: &str, host: &str, wanted: AclOperation) -> Option<AclPermissionType> {
    if acl.principal != who && acl.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if acl.host != WILDCARD && acl.host != host {
        return None;
    }
    if acl.operation != AclOperation::All {
        let applies = match (acl.permission, wanted) {
            (AclPermissionType::Allow, AclOperation::Describe) => matches!(
                acl.operation,
                AclOperation::Describe | AclOperation::Read | AclOperation::Write | AclOperation::Delete | AclOperation::Alter
            ),
            (AclPermissionType::Allow, AclOperation::DescribeConfigs) => {
                matches!(acl.operation, AclOperation::DescribeConfigs | AclOperation::AlterConfigs)
            }
            _ => acl.operation == wanted,
        };
        if !applies {
            return None;
        }
    }
    Some(acl.permission)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::AclPermissionType::{Allow, Deny};
    use crate::security::acl::PatternType::{Literal, Prefixed};

    /// A topic ACL for any host.
    fn acl(name: &str, pt: PatternType, who: &str, op: AclOperation, perm: AclPermissionType) -> AclBinding {
        crate::security::acl::tests::acl(ResourceType::Topic, name, pt, who, op, perm)
    }

    fn may(acls: &[AclBinding], who: &str, op: AclOperation, topic: &str) -> bool {
        let config = AuthorizerConfig { super_users: vec!["User:admin".into()], allow_if_no_acl: false };
        let principal = KafkaPrincipal::parse(who).unwrap();
        authorize(
            &config,
            acls,
            &principal,
            "127.0.0.1",
            Action { operation: op, resource_type: ResourceType::Topic, resource_name: topic },
        )
    }

    #[test]
    fn allow_deny_and_implied_operations() {
        use AclOperation::*;
        let acls = vec![
            acl("orders", Literal, "User:alice", Read, Allow),
            acl("pay", Prefixed, "User:bob", Write, Allow),
            acl("payroll", Literal, "User:bob", Write, Deny),
            acl("*", Literal, "User:carol", All, Allow),
            acl("orders", Literal, "User:*", Read, Deny),
        ];
        // The wildcard-principal DENY beats alice's ALLOW.
        assert!(!may(&acls, "User:alice", Read, "orders"));
        // READ implies DESCRIBE for an ALLOW; the DENY READ does not deny DESCRIBE.
        assert!(may(&acls, "User:alice", Describe, "orders"));
        assert!(may(&acls, "User:bob", Write, "payments"));
        assert!(may(&acls, "User:bob", Describe, "payments"), "WRITE implies DESCRIBE");
        assert!(!may(&acls, "User:bob", Read, "payments"));
        assert!(!may(&acls, "User:bob", Write, "payroll"), "a literal DENY beats a prefix ALLOW");
        assert!(may(&acls, "User:carol", Delete, "anything"));
        assert!(!may(&acls, "User:carol", Read, "orders"), "DENY for User:* covers carol too");
        assert!(may(&acls, "User:admin", Read, "orders"), "super user");
        assert!(!may(&acls, "User:dave", Describe, "other"), "carol's wildcard ACL puts ACLs on every topic");
    }

    #[test]
    fn no_acl_on_the_resource_is_the_default() {
        let principal = KafkaPrincipal::user("eve");
        let action = Action { operation: AclOperation::Read, resource_type: ResourceType::Topic, resource_name: "t" };
        let other = [acl("u", Literal, "User:x", AclOperation::Read, Allow)];
        let open = AuthorizerConfig { super_users: vec![], allow_if_no_acl: true };
        assert!(authorize(&open, &other, &principal, "h", action));
        assert!(!authorize(&AuthorizerConfig::default(), &other, &principal, "h", action));
        // An ACL on the resource for someone else: denied even with the open default.
        let on_t = [acl("t", Literal, "User:x", AclOperation::Read, Allow)];
        assert!(!authorize(&open, &on_t, &principal, "h", action));
        // Host match.
        let mut from_h = acl("t", Literal, "User:eve", AclOperation::Read, Allow);
        from_h.host = "10.0.0.1".into();
        assert!(!authorize(&open, [&from_h], &principal, "10.0.0.2", action));
        assert!(authorize(&open, [&from_h], &principal, "10.0.0.1", action));
    }

    #[test]
    fn authorized_operations_as_kafka_packs_them() {
        use AclOperation::*;
        let principal = KafkaPrincipal::user("alice");
        let config = AuthorizerConfig { super_users: vec!["User:admin".into()], allow_if_no_acl: false };
        let ops = |config: Option<&AuthorizerConfig>, acls: &[AclBinding], who: &KafkaPrincipal, rt: ResourceType, name: &str| {
            let acls: std::collections::BTreeSet<AclBinding> = acls.iter().cloned().collect();
            authorized_operations(config, &acls, who, "127.0.0.1", rt, name)
        };
        // No authorizer: every supported operation (Kafka's values for these types).
        assert_eq!(ops(None, &[], &principal, ResourceType::Cluster, "kafka-cluster"), 8096);
        assert_eq!(ops(None, &[], &principal, ResourceType::Topic, "t"), 3576);
        assert_eq!(ops(None, &[], &principal, ResourceType::Group, "g"), 3400);
        // A super user gets the same; nobody gets an operation the type does not have.
        assert_eq!(ops(Some(&config), &[], &KafkaPrincipal::user("admin"), ResourceType::Group, "g"), 3400);
        assert_eq!(ops(Some(&config), &[], &principal, ResourceType::Topic, "t"), 0);
        let bit = |ops: &[AclOperation]| ops.iter().fold(0, |b, o| b | 1 << o.code());
        // READ implies DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS.
        let acls = [
            acl("t", Literal, "User:alice", Read, Allow),
            acl("t", Literal, "User:alice", AlterConfigs, Allow),
            acl("t", Literal, "User:alice", Write, Deny),
        ];
        assert_eq!(ops(Some(&config), &acls, &principal, ResourceType::Topic, "t"), bit(&[Read, Describe, AlterConfigs, DescribeConfigs]));
        // A DENY of DESCRIBE takes away what READ implied, not READ.
        let acls = [acl("t", Literal, "User:alice", Read, Allow), acl("t", Prefixed, "User:*", Describe, Deny)];
        assert_eq!(ops(Some(&config), &acls, &principal, ResourceType::Topic, "t"), bit(&[Read]));
        // ALL on the topic: every topic operation, and none of the cluster's.
        let acls = [acl("*", Literal, "User:alice", All, Allow)];
        assert_eq!(ops(Some(&config), &acls, &principal, ResourceType::Topic, "x"), 3576);
        assert_eq!(ops(Some(&config), &acls, &principal, ResourceType::Cluster, "kafka-cluster"), 0);
    }
}
