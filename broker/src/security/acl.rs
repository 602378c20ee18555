//! Kafka's ACL model: a binding is a resource pattern (type, name, LITERAL
//! or PREFIXED) and an entry (principal, host, operation, ALLOW or DENY).
//! Filters (DescribeAcls, DeleteAcls) add ANY and MATCH. The byte codes are
//! Kafka's (`ResourceType`, `PatternType`, `AclOperation`,
//! `AclPermissionType`), as the wire and `kafka-acls` use them.

use serde::{Deserialize, Serialize};

/// A resource name or host that matches every one (`*`).
pub const WILDCARD: &str = "*";
/// The principal every principal matches (`User:*`).
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub fn code(self) -> i8 {
                match self { $(Self::$variant => $code,)* }
            }

            /// `None` for a code Kafka does not define (Kafka's UNKNOWN).
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

codes!(
    /// `ResourceType` (UNKNOWN = 0 is `None`).
    ResourceType { Any = 1, Topic = 2, Group = 3, Cluster = 4, TransactionalId = 5, DelegationToken = 6, User = 7, }
);
codes!(
    /// `PatternType` (UNKNOWN = 0 is `None`).
    PatternType { Any = 1, Match = 2, Literal = 3, Prefixed = 4, }
);
codes!(
    /// `AclOperation` (UNKNOWN = 0 is `None`).
    AclOperation {
        Any = 1,
        All = 2,
        Read = 3,
        Write = 4,
        Create = 5,
        Delete = 6,
        Alter = 7,
        Describe = 8,
        ClusterAction = 9,
        DescribeConfigs = 10,
        AlterConfigs = 11,
        IdempotentWrite = 12,
        CreateTokens = 13,
        DescribeTokens = 14,
        TwoPhaseCommit = 15,
    }
);
codes!(
    /// `AclPermissionType` (UNKNOWN = 0 is `None`).
    AclPermissionType { Any = 1, Deny = 2, Allow = 3, }
);

/// One ACL, as stored: no ANY or MATCH in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice` or `User:*`.
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

/// Why a binding cannot be created (CreateAcls answers INVALID_REQUEST with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAcl {
    #[error("ACL resource type, pattern type, operation and permission must be specific (not ANY, MATCH or UNKNOWN)")]
    NotSpecific,
    #[error("Invalid principal {0:?}: expected Type:name")]
    Principal(String),
    #[error("Resource name must not be empty")]
    EmptyName,
    #[error("Only the resource name kafka-cluster is allowed for CLUSTER ACLs")]
    ClusterName,
}

impl AclBinding {
    /// Kafka's checks on a binding to create (`AclControlManager.validateNewAcl`).
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let specific = self.resource_type != ResourceType::Any
            && matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed)
            && self.operation != AclOperation::Any
            && self.permission != AclPermissionType::Any;
        if !specific {
            return Err(InvalidAcl::NotSpecific);
        }
        if crate::security::KafkaPrincipal::parse(&self.principal).is_none() {
            return Err(InvalidAcl::Principal(self.principal.clone()));
        }
        if self.resource_name.is_empty() {
            return Err(InvalidAcl::EmptyName);
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != "kafka-cluster" {
            return Err(InvalidAcl::ClusterName);
        }
        Ok(())
    }
}

/// A DescribeAcls or DeleteAcls filter; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AclFilter {
    /// A filter from the wire's fields (DescribeAcls and DeleteAcls carry
    /// the same seven); an undefined code is Kafka's INVALID_REQUEST.
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, &'static str> {
        Ok(Self {
            resource_type: ResourceType::from_code(resource_type).ok_or("Invalid resource type filter")?,
            resource_name: resource_name.map(str::to_string),
            pattern_type: PatternType::from_code(pattern_type).ok_or("Invalid pattern type filter")?,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: AclOperation::from_code(operation).ok_or("Invalid operation filter")?,
            permission: AclPermissionType::from_code(permission).ok_or("Invalid permission type filter")?,
        })
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_resource(acl)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == AclPermissionType::Any || self.permission == acl.permission)
    }

    /// `ResourcePatternFilter.matches`: MATCH takes the literal name, the
    /// wildcard and every prefix pattern the name starts with.
    fn matches_resource(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) | (PatternType::Match, None) => true,
            (PatternType::Any, Some(name)) => *name == acl.resource_name,
            (PatternType::Match, Some(name)) => match acl.pattern_type {
                PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&acl.resource_name),
                _ => false,
            },
            (pattern, name) => pattern == acl.pattern_type && name.as_ref().is_none_or(|n| *n == acl.resource_name),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn acl(rt: ResourceType, name: &str, pt: PatternType, who: &str, op: AclOperation, perm: AclPermissionType) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: who.into(),
            host: WILDCARD.into(),
            operation: op,
            permission: perm,
        }
    }

    fn filter(rt: ResourceType, name: Option<&str>, pt: PatternType) -> AclFilter {
        AclFilter {
            resource_type: rt,
            resource_name: name.map(str::to_string),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermissionType::Any,
        }
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(ResourceType::from_code(4), Some(ResourceType::Cluster));
        assert_eq!(ResourceType::from_code(0), None);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclOperation::from_code(8), Some(AclOperation::Describe));
        assert_eq!(AclPermissionType::Allow.code(), 3);
        assert_eq!(AclPermissionType::from_code(9), None);
    }

    #[test]
    fn filters_match_as_kafkas() {
        use AclOperation::*;
        use AclPermissionType::*;
        use PatternType::*;
        use ResourceType::*;
        let lit = acl(Topic, "orders", Literal, "User:alice", Read, Allow);
        let wild = acl(Topic, "*", Literal, "User:alice", Read, Allow);
        let pre = acl(Topic, "ord", Prefixed, "User:alice", Read, Allow);
        let group = acl(Group, "orders", Literal, "User:alice", Read, Allow);
        let any = filter(ResourceType::Any, None, PatternType::Any);
        assert!([&lit, &wild, &pre, &group].iter().all(|a| any.matches(a)));
        let m = filter(Topic, Some("orders"), Match);
        assert!(m.matches(&lit) && m.matches(&wild) && m.matches(&pre) && !m.matches(&group));
        let exact = filter(Topic, Some("orders"), PatternType::Any);
        assert!(exact.matches(&lit) && !exact.matches(&wild) && !exact.matches(&pre));
        let prefixed = filter(Topic, Some("ord"), Prefixed);
        assert!(prefixed.matches(&pre) && !prefixed.matches(&lit));
        let literal_any_name = filter(Topic, None, Literal);
        assert!(literal_any_name.matches(&lit) && literal_any_name.matches(&wild) && !literal_any_name.matches(&pre));
        let mut by_principal = filter(ResourceType::Any, None, PatternType::Any);
        by_principal.principal = Some("User:bob".into());
        assert!(!by_principal.matches(&lit));
        by_principal.principal = Some("User:alice".into());
        by_principal.permission = Deny;
        assert!(!by_principal.matches(&lit));
    }

    #[test]
    fn only_specific_bindings_are_valid() {
        use AclOperation::*;
        use AclPermissionType::*;
        use PatternType::*;
        use ResourceType::*;
        assert_eq!(acl(Topic, "t", Literal, "User:a", Read, Allow).validate(), Ok(()));
        assert_eq!(acl(Topic, "t", Match, "User:a", Read, Allow).validate(), Err(InvalidAcl::NotSpecific));
        assert_eq!(acl(Topic, "t", Literal, "User:a", AclOperation::Any, Allow).validate(), Err(InvalidAcl::NotSpecific));
        assert_eq!(acl(Topic, "t", Literal, "alice", Read, Allow).validate(), Err(InvalidAcl::Principal("alice".into())));
        assert_eq!(acl(Topic, "", Literal, "User:a", Read, Allow).validate(), Err(InvalidAcl::EmptyName));
        assert_eq!(acl(Cluster, "c", Literal, "User:a", Alter, Allow).validate(), Err(InvalidAcl::ClusterName));
        assert_eq!(acl(Cluster, "kafka-cluster", Literal, "User:a", Alter, Allow).validate(), Ok(()));
    }
}
